// Package deadline refreshes connection deadlines cheaply: setting one per
// message costs more than a small message does.
package deadline

import "time"

// Refresh moves *by to d from now with set, unless *by is still more than
// 7/8 of d away, so a timeout of d fires after between 7/8 of d and d of
// inactivity. A zero or negative d means no deadline: set is not called.
func Refresh(by *time.Time, d time.Duration, set func(time.Time) error) {
	if d <= 0 {
		return
	}
	if now := time.Now(); by.Sub(now) < d-d/8 {
		*by = now.Add(d)
		set(*by)
	}
}
