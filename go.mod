module shout

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/rogpeppe/go-internal v1.16.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
	golang.org/x/text v0.44.0
)

require (
	github.com/stretchr/testify v1.11.1 // indirect
	golang.org/x/tools v0.52.0 // indirect
)
