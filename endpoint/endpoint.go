// Package endpoint parses the addresses shout's commands take
// (host:port, tcp://host:port, udp://host:port, tls://host:port and
// unix:///path) and opens them, with TLS and the PROXY protocol where
// asked. Listen is the one place listeners are made, for shout serve and
// for tests alike:
//
//	eps, err := endpoint.Parse("127.0.0.1:0", "tcp", "udp")
//	listeners, packets, err := endpoint.Listen(eps)
//
// An Endpoint is also what bench.Config and client.Dial take, so the
// package is public: a program that runs a load or dials shout from
// outside this module names its target with it.
package endpoint

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Endpoint is one transport and address.
type Endpoint struct {
	Network string // "tcp", "udp" or "unix"
	Address string // host:port, or a socket path for unix
	TLS     bool   // TLS over tcp: tls://host:port
}

// String returns the endpoint as a URL: tcp://127.0.0.1:8080,
// tls://127.0.0.1:8443, unix:///tmp/s.
func (e Endpoint) String() string {
	if e.TLS {
		return "tls://" + e.Address
	}
	return e.Network + "://" + e.Address
}

// ErrBadAddress is wrapped by every error Parse returns.
var ErrBadAddress = errors.New("endpoint: bad address")

// badAddress is Parse's error. It reads `bad address "s": why`, with no
// package name, since a user sees it after "shout: ", and errors.Is finds
// ErrBadAddress in it. meant is the one address offered in why, or "";
// form, where s is no host:port, what it should be (tcp://HOST:PORT, or
// tcp://[IPV6]:PORT for an IPv6 address).
// listen and local, where s is a listener's address in socat's syntax
// (TCP-LISTEN:8080), are the two offered for it: every interface, as
// socat listens, and this machine only.
type badAddress struct{ s, why, meant, form, listen, local string }

// newBad is the error for s: why, and meant, if not "", the one address
// offered for it, said after why: (did you mean "tcp://127.0.0.1:8080"?).
func newBad(s, why, meant string) *badAddress {
	if meant != "" {
		why = fmt.Sprintf("%s (did you mean %q?)", why, meant)
	}
	return &badAddress{s: s, why: why, meant: meant}
}

// offered is the error for s: why, offering meant if Parse takes it, or
// the one address Parse offers for it in turn (tcp:127.0.0.1:8080/, a
// URL's too: not "tcp://127.0.0.1:8080/"). Else no address is offered
// but what is wrong with it is said: tcp:/127.0.0.1 offered
// "tcp://127.0.0.1", missing its port, and a path too long for a socket
// "unix:///…", refused for its length.
func offered(s, why, meant string) *badAddress {
	if meant == "" { // none, or two in why (socat's TCP-LISTEN:8080)
		return newBad(s, why, "")
	}
	_, err := Parse(meant)
	var b *badAddress
	switch {
	case !errors.As(err, &b):
	case b.meant != "":
		meant = b.meant
	case b.form != "":
		return newBad(s, fmt.Sprintf("%s (shout takes %s)", why, b.form), "")
	default:
		return newBad(s, why+"; "+b.why, "")
	}
	return newBad(s, why, meant)
}

func (e *badAddress) Error() string { return fmt.Sprintf("bad address %q: %s", Redacted(e.s), e.why) }
func (e *badAddress) Unwrap() error { return ErrBadAddress }

// Meant is the one address that err, an error of Parse's, offers for
// what was given (did you mean "tcp://127.0.0.1:8080"?), or "": a caller
// that takes fewer schemes than Parse (an HTTP listener: no udp://, no
// tls://) checks it before passing the offer on.
func Meant(err error) string {
	var b *badAddress
	if !errors.As(err, &b) {
		return ""
	}
	return b.meant
}

// Listener is the two addresses that err, an error of Parse's, offers
// for a listener's address in socat's syntax (TCP-LISTEN:8080): every,
// on every interface as socat listens (tcp://:8080), and local, on this
// machine only (tcp://127.0.0.1:8080); or "" and "". Meant offers
// neither: a listener's address is for shout serve alone.
func Listener(err error) (every, local string) {
	var b *badAddress
	if !errors.As(err, &b) {
		return "", ""
	}
	return b.listen, b.local
}

// SchemeOf is the scheme, tcp, udp, tls or unix, of the address that s
// names or was meant to, whether Parse takes s or not: the one written
// (udp://, udp:), or the one Parse offers for another tool's (https://
// and socat's OPENSSL: tls://, socat's UDP4: and UDP-LISTEN: udp://); ""
// where s names none (host:port, a path). A caller that takes fewer
// schemes than Parse (an HTTP listener: no udp://) refuses it so, where
// Parse's error would hint at a form the caller refuses.
func SchemeOf(s string) string {
	name, _, found := strings.Cut(s, "://")
	if !found {
		if name, _, found = strings.Cut(s, ":"); !found {
			return ""
		}
	}
	name = strings.ToLower(name)
	if isScheme(name) {
		return name
	}
	if scheme, _, _ := socatKind(name); scheme != "" {
		return scheme
	}
	if strings.Contains(s, "://") {
		return schemeMeant(name)
	}
	return ""
}

// Parse reads s as an endpoint. Without a scheme, s is host:port (or a
// bare port on 127.0.0.1) and gets each network in plain, in order: serve
// passes tcp and udp, connect passes tcp.
func Parse(s string, plain ...string) ([]Endpoint, error) {
	bad := func(why string) error { return newBad(s, why, "") }
	offer := func(why, meant string) error { return offered(s, why, meant) }
	scheme, rest, found := strings.Cut(s, "://")
	scheme = strings.ToLower(scheme) // as in any URL: TCP:// is tcp://
	if found {
		rest = webPort(scheme, rest)
	} else {
		rest, scheme = s, ""
		if name, after, ok := strings.Cut(s, ":"); ok && after != "" {
			if b := socat(s, name, after); b != nil {
				return nil, b
			}
		}
		// A scheme with one slash or none (unix:/tmp/s, tcp:127.0.0.1:80)
		// would read as host "unix" with port "/tmp/s", or as too many
		// colons. tcp:8080 and tcp:http are host tcp, port 8080 or http.
		if name, after, ok := strings.Cut(s, ":"); ok && isScheme(strings.ToLower(name)) && after != "" {
			if !isPort(after) {
				name = strings.ToLower(name)
				if name != "unix" {
					after = strings.TrimLeft(after, "/")
				}
				return nil, offer("a scheme ends in ://", name+"://"+after)
			}
		}
		// A path alone, as nc -U and socat's UNIX-CONNECT take one, read
		// as a host without a port: "missing port in address".
		if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
			return nil, offer("a Unix socket's path goes after unix://", "unix://"+s)
		}
	}
	if scheme != "unix" { // a socket's path is a path, @ and all
		if why, meant := urlPath(scheme, rest, found); why != "" {
			return nil, offer(why, meant)
		}
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return nil, bad("no socket path (want unix:///path/to/socket)")
		}
		if n := maxUnixPath(rest); len(rest) > n {
			// Else bind and connect fail with a bare "invalid argument".
			return nil, bad(fmt.Sprintf("a socket path of %d bytes: this system's sockets take at most %d", len(rest), n))
		}
		return []Endpoint{{Network: "unix", Address: rest}}, nil
	case "tcp", "udp", "tls", "":
	default:
		if meant := schemeMeant(scheme); meant != "" {
			if _, err := Parse(meant + "://" + rest); err == nil {
				return nil, offer("unknown scheme "+strconv.Quote(scheme), meant+"://"+rest)
			}
		}
		return nil, bad("unknown scheme " + strconv.Quote(scheme) + " (want tcp://, udp://, tls:// or unix://)")
	}
	if _, err := strconv.ParseUint(rest, 10, 16); err == nil {
		rest = net.JoinHostPort("127.0.0.1", rest)
	} else if rest != "" && strings.Trim(rest, "0123456789") == "" {
		return nil, bad("port " + rest + " is not a number from 0 to 65535") // a bare port, too large
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		why := strings.TrimPrefix(err.Error(), "address "+rest+": ")
		form := "HOST:PORT"
		if strings.HasPrefix(rest, "[") {
			form = "[IPV6]:PORT"
		} else if strings.Count(rest, ":") > 1 {
			if w := unbracketed(rest, why); w != why { // an IPv6 address: its brackets are said
				why, form = w, "[IPV6]:PORT"
			}
		}
		b := newBad(s, "want host:port, [ipv6]:port or a scheme ("+why+")", "")
		if b.form = form; found {
			b.form = scheme + "://" + form
		}
		return nil, b
	}
	// An IPv6 zone is an interface's name, which may have spaces (on
	// Windows, "Ethernet 2"): what is checked is the host before it.
	if name, _, _ := strings.Cut(host, "%"); strings.ContainsAny(name, "/ \t") {
		// Else the lookup fails later, as if the name were merely unknown.
		return nil, bad("host " + strconv.Quote(host) + " is not a name or an address")
	}
	if port == "" {
		return nil, bad("no port")
	}
	if !isPort(port) {
		return nil, bad("port " + strconv.Quote(port) + " is not a number from 0 to 65535")
	}
	if _, zone, ok := strings.Cut(host, "%"); ok && !isInterface(zone) {
		// Go takes a zone that names no interface for none: bind and
		// connect then fail with a bare "invalid argument" (fe80::1%eth9),
		// or it is dropped unsaid (::1%eth9).
		return nil, bad("zone " + strconv.Quote(zone) + " names no network interface of this machine")
	}
	switch scheme {
	case "tls":
		return []Endpoint{{Network: "tcp", Address: rest, TLS: true}}, nil
	case "":
	default:
		return []Endpoint{{Network: scheme, Address: rest}}, nil
	}
	eps := make([]Endpoint, len(plain))
	for i, network := range plain {
		eps[i] = Endpoint{Network: network, Address: rest}
	}
	return eps, nil
}

// unbracketed says what is wrong with s, an IPv6 address written
// without brackets, where SplitHostPort says only "too many colons" (and
// 127.0.0.1 gets "missing port"): an address alone lacks a port (::1),
// and its last group may be the port meant (::1:8080), so both readings
// are offered. why is SplitHostPort's word, for what is neither.
func unbracketed(s, why string) string {
	const brackets = "an IPv6 address goes in brackets before its port: "
	a, err := netip.ParseAddr(s)
	whole := err == nil && a.Is6() && !strings.Contains(a.Zone(), ":") // not fe80::1%lo:8080 with zone "lo:8080"
	var head, port string
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		h := s[:i]
		if i == 1 && !(whole && a.IsLoopback()) {
			// ::8080 may be [::]:8080, every address (but ::1 is the
			// loopback address, not port 1).
			h = "::"
		}
		if a, err := netip.ParseAddr(h); err == nil && a.Is6() {
			if _, err := strconv.ParseUint(s[i+1:], 10, 16); err == nil {
				head, port = h, s[i+1:]
			}
		}
	}
	switch {
	case whole && port != "":
		return fmt.Sprintf("missing port in address; %s%s, or %s if %s is the port", brackets, typed("["+s+"]:PORT"), typed("["+head+"]:"+port), port)
	case whole:
		return fmt.Sprintf("missing port in address; %s%s", brackets, typed("["+s+"]:PORT"))
	case port != "":
		return brackets + typed("["+head+"]:"+port)
	}
	return why
}

// typed is an address as a hint offers it to be typed: as it is, or
// quoted if it has what a terminal would not show as itself (a zone may
// hold any byte: a control character, a byte that is not UTF-8).
func typed(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

// isPort says whether port is a port number or a service name, as
// net.Listen takes.
func isPort(port string) bool {
	if strings.Trim(port, "0123456789") == "" {
		// A number is a port only below 2^16: net.LookupPort wraps some
		// past 2^32 to a port, with no error (4294967377 is 81), and
		// net.Listen and Dial take them so.
		_, err := strconv.ParseUint(port, 10, 16)
		return err == nil
	}
	if strings.HasPrefix(port, "+") || strings.HasPrefix(port, "-") {
		// No service name begins so; Go's lookup reads the number after
		// the sign (+80 is 80, -0 is 0).
		return false
	}
	_, err := net.LookupPort("tcp", port)
	return err == nil
}

// isInterface says whether zone names one of this machine's network
// interfaces, by name or by index, as Go reads an IPv6 zone; or whether
// they cannot be listed, where nothing is known.
func isInterface(zone string) bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return true
	}
	index, ierr := strconv.Atoi(zone)
	for _, ifc := range ifs {
		if ifc.Name == zone || ierr == nil && ifc.Index == index {
			return true
		}
	}
	return false
}

// socatSchemes are the address types of socat's syntax (TCP4:host:port,
// TCP-LISTEN:8080, UNIX-CONNECT:/path), by the scheme that says the same
// here; socatListen, the suffixes that make them a listener's.
var (
	socatSchemes = map[string]string{
		"tcp": "tcp", "tcp4": "tcp", "tcp6": "tcp", "udp": "udp", "udp4": "udp", "udp6": "udp",
		"unix": "unix", "openssl": "tls", "ssl": "tls",
	}
	socatListen = []string{"-listen", "-recvfrom", "-recv"}
)

// socatKind reads name, the type of an address in socat's syntax
// (TCP4, TCP-LISTEN, UNIX-CONNECT, any case): scheme is the one that says
// the same here, or "" for none of socat's; listen, whether it is a
// listener's; typed, whether it is socat's beyond doubt, not a host
// named tcp, udp or unix (tcp:8080) nor a scheme missing a slash.
func socatKind(name string) (scheme string, listen, typed bool) {
	kind := strings.ToLower(name)
	for _, suffix := range socatListen {
		if k, ok := strings.CutSuffix(kind, suffix); ok {
			kind, listen = k, true
		}
	}
	kind, connect := strings.CutSuffix(kind, "-connect")
	scheme = socatSchemes[kind]
	typed = listen || connect || strings.ContainsAny(kind, "46") || kind == "openssl" || kind == "ssl"
	return scheme, listen, typed
}

// socat is the error for s, name:after, an address in socat's syntax:
// what to write for it, with the one address meant if it offers one, or,
// for a listener's, the two it offers (every interface, and this machine
// only); nil if s is not one. TCP-LISTEN:8080 read as host TCP-LISTEN,
// port 8080, and failed only as a name no lookup found; TCP4:host:port
// as too many colons. TCP:host:port and tcp:host:port are isScheme's.
func socat(s, name, after string) *badAddress {
	scheme, listen, typed := socatKind(name)
	if scheme == "" || !typed {
		return nil // tcp:8080 is host tcp; TCP:host:port gets the :// hint
	}
	if !listen && scheme != "unix" && isPort(after) {
		// socat connects to host:port, never to a port alone: this is
		// a host that has socat's word for a name, with its port, as
		// tcp:8080 is (and tcp://8080, 127.0.0.1, was not meant).
		return nil
	}
	after, _, _ = strings.Cut(after, ",") // socat's options
	meant := scheme + "://" + after
	if listen && scheme != "unix" {
		meant = scheme + "://:" + after
	}
	if !listen || scheme == "unix" {
		// Parse offers it, or the address it offers in turn
		// (TCP4:127.0.0.1:8080/, a URL's path), or says what it lacks.
		return offered(s, "socat's syntax", meant)
	}
	if _, err := Parse(meant); err != nil { // (it has a scheme: no socat in it)
		// A port out of range is said as such (TCP-LISTEN:99999), as
		// offered says it; what is no port at all here (TCP-LISTEN:8080/,
		// a URL's path) names the form alone.
		if b := (*badAddress)(nil); errors.As(err, &b) && b.meant == "" && b.form == "" {
			return offered(s, "socat's syntax; "+b.why, "")
		}
		return offered(s, fmt.Sprintf("socat's syntax (shout takes %s://HOST:PORT)", scheme), "")
	}
	local := scheme + "://127.0.0.1:" + after
	b := offered(s, fmt.Sprintf("socat's syntax (did you mean %q, every interface as socat listens, or %q, this machine only?)", meant, local), "")
	b.listen, b.local = meant, local
	return b
}

// schemeMeant is the scheme Parse takes that a user who wrote scheme
// meant, or "": socat's names (tcp4://, ssl://) and the web's (https://,
// wss:// a TLS server, http:// a TCP one: shout speaks no HTTP).
func schemeMeant(scheme string) string {
	switch scheme {
	case "https", "wss":
		return "tls"
	case "http", "ws":
		return "tcp"
	}
	if s := socatSchemes[scheme]; s != "unix" {
		return s
	}
	return ""
}

// webPorts are the ports a web URL without one means, by its scheme.
var webPorts = map[string]string{"http": "80", "ws": "80", "https": "443", "wss": "443"}

// webPort is rest, what follows a web URL's scheme, with its scheme's
// port where it names none (https://localhost/ is localhost:443), so
// that the address meant is offered: none was, for want of a port. Other
// schemes have no port of their own, and rest is as it is.
func webPort(scheme, rest string) string {
	port := webPorts[scheme]
	end := authorityEnd(rest)
	host := rest[userLen(rest[:end]):end]
	bracketed := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
	if port == "" || host == "" || !bracketed && strings.ContainsAny(host, ":[]") {
		return rest
	}
	return rest[:end] + ":" + port + rest[end:]
}

// authorityEnd is where the address part of a URL, rest (what follows
// scheme://), ends: at its path, query or fragment. A password may hold
// their '/', '?' or '#' (base64's '/'): where no '@' comes before the
// first of them, and what does is a user and the start of a password,
// user:pa, not a host and its port (127.0.0.1:1/a:b@c), the address part
// goes on to the next '@', and the user with it.
func authorityEnd(rest string) int {
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		return len(rest)
	}
	at := strings.IndexByte(rest[end:], '@')
	_, port, colon := strings.Cut(rest[:end], ":")
	if at < 0 || strings.ContainsAny(rest[:end], "@[") || !colon || strings.Trim(port, "0123456789") == "" {
		return end
	}
	end += at + 1
	if i := strings.IndexAny(rest[end:], "/?#"); i >= 0 {
		return end + i
	}
	return len(rest)
}

// userLen is the length of the user (user@, user:password@) that the
// address part of a URL, addr, begins with, its @ included; 0 if none.
// An @ inside brackets is an IPv6 zone's.
func userLen(addr string) int {
	host, _, _ := strings.Cut(addr, "[")
	return strings.LastIndexByte(host, '@') + 1
}

// Redacted is s, an address as typed, with the password of the URL's user
// in it (tcp://user:password@host:port, socat's TCP4:user:password@…)
// written xxxxx, as net/url's URL.Redacted writes it: an error that says
// the address back ends up in a CI log or a ticket. A Unix socket's path
// is a path, @ and all (unix://, unix:, socat's UNIX-CONNECT:).
func Redacted(s string) string {
	if SchemeOf(s) == "unix" {
		return s
	}
	scheme, rest, found := strings.Cut(s, "://")
	start := 0
	if found {
		start = len(scheme) + len("://")
	} else {
		rest = s
	}
	rest = rest[:authorityEnd(rest)]
	n := userLen(rest)
	name, _, password := strings.Cut(rest[:n], ":")
	if !password {
		return s
	}
	return s[:start] + name + ":xxxxx@" + s[start+n:]
}

// urlPath says what was meant by scheme://rest, a URL pasted whole
// (http://127.0.0.1:8080/ from a browser, tcp://user@…, tcp://…/?x): its
// user, path, query or fragment is no part of an address, which is what
// lies between them. It says nothing where no address does. Without a
// scheme (found false) the same: a user (me@host:port, as ssh takes) was
// looked up in the host's name, a path read as the port's (8080/). (A
// path alone, unix://'s, is Parse's before.) meant is the address offered.
func urlPath(scheme, rest string, found bool) (why, meant string) {
	addr, user, tail := rest, "", ""
	i := authorityEnd(addr)
	addr, tail = addr[:i], addr[i:]
	n := userLen(addr)
	user, addr = addr[:n], addr[n:]
	if user == "" && (addr == "" || tail == "") {
		return "", ""
	}
	taken := scheme
	if found && !isScheme(scheme) {
		if taken = schemeMeant(scheme); taken == "" { // (never unix)
			return "", ""
		}
	}
	meant = addr
	if found {
		meant = taken + "://" + addr
	}
	switch {
	case taken != scheme:
		why = "unknown scheme " + strconv.Quote(scheme)
	case user != "":
		// What is wrong with the address after it, if anything, is
		// offered's to say, with the form to write it in: not the
		// whole's, whose port is a password (user:secret@127.0.0.1).
		return fmt.Sprintf("a URL's user %q is not part of an address", Redacted(user)), meant
	default:
		kind := map[byte]string{'/': "path", '?': "query", '#': "fragment"}[tail[0]]
		why = fmt.Sprintf("a URL's %s %q is not part of an address", kind, tail)
	}
	if _, err := Parse(meant); err != nil {
		// What is wrong with the address itself is said as it was
		// written: its port was quoted with the path (port "65536/").
		// Not a form to write it in (tcp://127.0.0.1/8080 has no port
		// before its path): that is Parse's, of the whole.
		if b := (*badAddress)(nil); errors.As(err, &b) && b.meant == "" && b.form == "" {
			return why + "; " + b.why, ""
		}
		return "", ""
	}
	return why, meant
}

// isScheme says whether name is one of the schemes Parse takes.
func isScheme(name string) bool {
	switch name {
	case "tcp", "udp", "tls", "unix":
		return true
	}
	return false
}

// maxUnixPath is the longest Unix socket name this system takes: its
// sockaddr's path field, less the terminating NUL a name in the file
// system needs. An abstract name ("@name", on Linux, and to Go on
// Windows) needs none; elsewhere "@" begins a file's name like any other.
func maxUnixPath(name string) int {
	n := len(syscall.RawSockaddrUnix{}.Path)
	abstract := strings.HasPrefix(name, "@") && (runtime.GOOS == "linux" || runtime.GOOS == "android" || runtime.GOOS == "windows")
	if !abstract {
		n--
	}
	return n
}
