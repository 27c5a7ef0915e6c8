//go:build !linux

package server

import "net"

// loopUnsupported says why the event loops cannot serve l: they are
// written for Linux's epoll.
func loopUnsupported(net.Listener) string { return "event loops need Linux's epoll" }

func (s *Server) serveLoop(*net.Listener) error { panic("unreachable") }

// loops stands for the event loops, which never start here.
type loops struct{}

func (*loops) wakeAll(bool) {}
func (*loops) unwatchAll()  {}
func (*loops) drainAll()    {}

func (*loops) endDrains(*Server, error) {}
func (*loops) keeps(net.Listener) bool  { return false }
