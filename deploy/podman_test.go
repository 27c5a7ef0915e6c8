package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"shout/internal/shouttest"
)

// The tests below build the image and run it under podman: minutes, not
// seconds, so they run only with SHOUT_INTEGRATION=1 (.ci/run sets it).

const (
	bound      = 30 * time.Second // for shout to answer, for a command to end
	buildBound = 10 * time.Minute // for the image, a cold go build included
)

func integration(t *testing.T) {
	t.Helper()
	if os.Getenv("SHOUT_INTEGRATION") == "" {
		t.Skip("builds and runs the image with podman: set SHOUT_INTEGRATION=1 to run it")
	}
}

// podman runs deploy/podman.sh (podman with the flags these machines
// need) with args, failing the test if it fails or takes longer than
// limit.
type podman struct {
	t   *testing.T
	env []string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	integration(t)
	shouttest.Tool(t, "runc", "runc")
	shouttest.Tool(t, "catatonit", "catatonit") // the pause image kube play builds
	shouttest.Tool(t, "podman", "podman")
	// podman.sh writes its containers.conf under TMPDIR.
	return &podman{t: t, env: append(os.Environ(), "TMPDIR="+t.TempDir())}
}

func (p *podman) cmd(ctx context.Context, dir string, name string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = p.env
	c.Dir = dir
	c.WaitDelay = time.Second
	return c
}

// run runs podman.sh args in dir and returns its standard output.
func (p *podman) run(dir string, limit time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.try(dir, limit, args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (p *podman) try(dir string, limit time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	script, err := filepath.Abs("podman.sh")
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	c := p.cmd(ctx, dir, script, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// logs is what the container wrote to stdout and stderr.
func (p *podman) logs(container string) string {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	script, _ := filepath.Abs("podman.sh")
	out, err := p.cmd(ctx, ".", script, "logs", container).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("podman logs %s: %v\n%s", container, err, out)
	}
	return string(out)
}

// cleanup runs podman.sh args at the end of the test, whatever happened.
func (p *podman) cleanup(dir string, args ...string) {
	p.t.Cleanup(func() {
		if _, err := p.try(dir, bound, args...); err != nil {
			p.t.Logf("cleaning up: podman %s: %v", strings.Join(args, " "), err)
		}
	})
}

func unique() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// buildImage builds the image with deploy/image.sh under a name of its
// own, removed at the end of the test.
func (p *podman) buildImage() string {
	p.t.Helper()
	image := "localhost/shout-test:" + unique()
	ctx, cancel := context.WithTimeout(context.Background(), buildBound)
	defer cancel()
	start := time.Now()
	out, err := p.cmd(ctx, ".", "./image.sh", image).CombinedOutput()
	if err != nil {
		p.t.Fatalf("deploy/image.sh: %v\n%s", err, out)
	}
	p.t.Logf("deploy/image.sh built %s in %v", strings.TrimSpace(string(out)), time.Since(start).Round(time.Millisecond))
	p.cleanup(".", "rmi", "--force", image)
	return image
}

// freePorts is n ports, each free on 127.0.0.1 for both TCP and UDP just
// now, for a container to listen on. They are let go before it starts,
// so they are taken outside the range the system gives a socket that
// asks for any port (ip_local_port_range): no socket of the tests
// running meanwhile, on 127.0.0.1:0 each, or of a client, is given one
// of them before the container binds it, as it could be a port taken
// from 127.0.0.1:0 and let go (the container then failed to listen, or
// the test reached another's server).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	low, high := ephemeralPorts(t)
	var outside []int
	for port := 10000; port <= 65535; port++ { // (below 10000, the ports of services)
		if port < low || port > high {
			outside = append(outside, port)
		}
	}
	var ports []int
	for range 100 {
		if len(ports) == n {
			return ports
		}
		port := outside[mathrand.IntN(len(outside))]
		if !slices.Contains(ports, port) && portFree(port) {
			ports = append(ports, port)
		}
	}
	t.Fatalf("%d of %d ports free for both TCP and UDP on 127.0.0.1 in 100 tries from 10000-65535 outside %d-%d", len(ports), n, low, high)
	return nil
}

// portFree reports whether port is free on 127.0.0.1 for both TCP and
// UDP.
func portFree(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ephemeralPorts is the range of ports the system gives a socket that
// asks for any (Linux's net.ipv4.ip_local_port_range, which IPv6 shares).
func ephemeralPorts(t *testing.T) (low, high int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatalf("the ports the system gives (podman runs on Linux): %v", err)
	}
	if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
		t.Fatalf("ip_local_port_range %q: %v", b, err)
	}
	return low, high
}

// freePorts' ports are distinct, free, and outside the range the system
// gives a socket asking for any port, where one let go could be given to
// another socket before the container binds it. (Taken on 127.0.0.1:0,
// and let go, they were inside it.)
func TestFreePortsOutsideEphemeralRange(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_local_port_range"); err != nil {
		t.Skipf("SKIP: no Linux port range here (podman runs on Linux): %v", err)
	}
	low, high := ephemeralPorts(t)
	ports := freePorts(t, 3)
	for i, port := range ports {
		if port >= low && port <= high || slices.Contains(ports[:i], port) || !portFree(port) {
			t.Errorf("ports %v: %d is inside %d-%d, taken twice, or not free", ports, port, low, high)
		}
	}
}

// waitReady waits until GET /readyz on the admin address says 200.
func waitReady(t *testing.T, admin string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(bound)
	c := &http.Client{Timeout: time.Second}
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, bounded by deadline
	}
	t.Fatalf("/readyz on %s not 200 within %v (last: %s)\n%s", admin, bound, last, logs())
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: bound}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// exchange sends msg over network to addr and returns the reply.
func exchange(t *testing.T, network, addr, msg string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, bound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	if network == "udp" {
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("udp %s: %v", addr, err)
		}
		return string(buf[:n])
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("tcp %s: %v", addr, err)
	}
	return string(b)
}

// checkServes checks that shout on addr answers a line over TCP and a
// datagram over UDP.
func checkServes(t *testing.T, addr string) {
	t.Helper()
	if got, want := exchange(t, "tcp", addr, "hello egon 哈哈哈\nstraße\n"), "HELLO EGON 哈哈哈\nSTRASSE\n"; got != want {
		t.Errorf("tcp: got %q, want %q", got, want)
	}
	if got, want := exchange(t, "udp", addr, "straße"), "STRASSE"; got != want {
		t.Errorf("udp: got %q, want %q", got, want)
	}
}

// checkConfined checks, from the host's /proc, that the container's
// process runs as uid and gid 65532, with no capability, on a read-only
// root file system.
func checkConfined(t *testing.T, p *podman, container string, noNewPrivs bool) {
	t.Helper()
	pid := strings.TrimSpace(p.run(".", bound, "inspect", "--format", "{{.State.Pid}}", container))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Uid:\t65532\t65532\t65532\t65532",
		"Gid:\t65532\t65532\t65532\t65532",
		"CapEff:\t0000000000000000",
		"CapPrm:\t0000000000000000",
		"CapBnd:\t0000000000000000",
		fmt.Sprintf("NoNewPrivs:\t%d", map[bool]int{false: 0, true: 1}[noNewPrivs]),
	} {
		if !strings.Contains(string(status), want+"\n") {
			t.Errorf("container process: no %q in /proc/%s/status", want, pid)
		}
	}
	mounts, err := os.ReadFile("/proc/" + pid + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	rootRO := false
	sc := bufio.NewScanner(bytes.NewReader(mounts))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 5 && f[4] == "/" {
			rootRO = slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	if !rootRO {
		t.Errorf("the container's root file system is not read-only:\n%s", mounts)
	}
}

// imageInfo is what podman image inspect says of an image that the test
// checks.
type imageInfo struct {
	Config struct {
		User       string
		Entrypoint []string
		Cmd        []string
		Labels     map[string]string
	}
	RootFS struct {
		Layers []string
	}
}

// TestImage builds the image as the README says, checks its labels and
// defaults, and runs it as the README says, on loopback: it answers over
// TCP and UDP, as uid 65532 with no capability on a read-only root, and
// stops gracefully on SIGTERM.
func TestImage(t *testing.T) {
	p := newPodman(t)
	image := p.buildImage()

	var infos []imageInfo
	if err := json.Unmarshal([]byte(p.run(".", bound, "image", "inspect", image)), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("podman image inspect: %v, %d images", err, len(infos))
	}
	info := infos[0]
	if info.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", info.Config.User)
	}
	if !slices.Equal(info.Config.Entrypoint, []string{"/shout"}) ||
		!slices.Equal(info.Config.Cmd, []string{"serve", ":8080", "--admin", ":9090", "--source-rate", "65536"}) {
		t.Errorf("entrypoint %q, cmd %q: want /shout serve :8080 --admin :9090 --source-rate 65536", info.Config.Entrypoint, info.Config.Cmd)
	}
	if len(info.RootFS.Layers) != 1 {
		t.Errorf("%d layers, want 1: the binary, FROM scratch", len(info.RootFS.Layers))
	}
	labels := info.Config.Labels
	version, revision := labels["org.opencontainers.image.version"], labels["org.opencontainers.image.revision"]
	if labels["org.opencontainers.image.source"] == "" || version == "" || version == "unknown" {
		t.Errorf("labels %v: want source and version", labels)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if revision != strings.TrimSpace(string(head)) {
			t.Errorf("revision label %q, want HEAD, %s", revision, head)
		}
	} else {
		t.Logf("no git checkout (%v): revision %q unchecked", err, revision)
	}
	// The binary says what the labels say.
	out := p.run(".", bound, "run", "--rm", "--network", "none", image, "version")
	if !strings.HasPrefix(out, "shout "+version+" ") || (len(revision) >= 12 && !strings.Contains(out, revision[:12])) {
		t.Errorf("shout version in the image says %q; labels say version %s, revision %s", out, version, revision)
	}

	ports := freePorts(t, 2)
	port, adminPort := ports[0], ports[1]
	addr, admin := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", adminPort)
	name := "shout-test-" + unique()
	p.run(".", bound, "run", "--detach", "--name", name, "--network", "host", "--read-only", "--cap-drop", "all",
		image, "serve", addr, "--admin", admin)
	p.cleanup(".", "rm", "--force", "--time", "0", name)
	logs := func() string { return p.logs(name) }
	waitReady(t, admin, logs)

	checkServes(t, addr)
	if s := httpStatus(t, "http://"+admin+"/healthz"); s != http.StatusOK {
		t.Errorf("/healthz: %d", s)
	}
	checkConfined(t, p, name, false)
	if got := strings.TrimSpace(p.run(".", bound, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name)); got != "true" {
		t.Errorf("podman says ReadonlyRootfs %s", got)
	}

	// SIGTERM, then status 0 after a graceful stop.
	p.run(".", bound, "stop", "--time", "20", name)
	state := strings.TrimSpace(p.run(".", bound, "inspect", "--format", "{{.State.ExitCode}}", name))
	if state != "0" {
		t.Errorf("exit code %s after SIGTERM, want 0\n%s", state, logs())
	}
	if l := logs(); !strings.Contains(l, "stopped") {
		t.Errorf("no graceful stop in the log:\n%s", l)
	}
}

// TestImageReproducible: two builds of the same checkout are the same
// image, byte for byte (the same ID, which is the digest of its config,
// and so of its layer and its creation time). They differed by the time
// each was built, so no one could check a pushed image against the
// source it says it came from.
func TestImageReproducible(t *testing.T) {
	p := newPodman(t)
	a, b := p.buildImage(), p.buildImage()
	id := func(image string) string {
		return strings.TrimSpace(p.run(".", bound, "image", "inspect", "--format", "{{.Id}} {{.Created}}", image))
	}
	if ida, idb := id(a), id(b); ida != idb {
		t.Errorf("two builds of one checkout differ:\n%s: %s\n%s: %s", a, ida, b, idb)
	}
}

// TestKubePlay runs the shipped Deployment and Service under podman kube
// play, changed only as a cluster on one loopback host needs (a test
// overlay): one replica, the host's network, on free loopback ports, the
// image just built. It answers over TCP and UDP, its admin listener says
// ready and healthy, and podman confines it as the securityContext asks.
func TestKubePlay(t *testing.T) {
	p := newPodman(t)
	image := p.buildImage()
	r := renderBase(t)
	ports := freePorts(t, 2)
	port, adminPort := ports[0], ports[1]
	addr, admin := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", adminPort)

	d := r.deployment
	d.Name = "shout-test-" + unique()
	one := int32(1)
	d.Spec.Replicas = &one
	pod := &d.Spec.Template.Spec
	pod.HostNetwork = true
	c := &pod.Containers[0]
	c.Image, c.ImagePullPolicy = image, corev1.PullNever
	for i, a := range c.Args {
		switch a {
		case ":8080":
			c.Args[i] = addr
		case ":9090":
			c.Args[i] = admin
		}
	}
	if !slices.Contains(c.Args, addr) || !slices.Contains(c.Args, admin) {
		t.Fatalf("args %q: found no :8080 and :9090 to put on loopback", c.Args)
	}
	// podman 4.3 publishes container ports, which host networking
	// refuses, and runs HTTP probes as curl inside the container, which a
	// scratch image has not: the test asks /readyz and /healthz itself.
	c.Ports, c.ReadinessProbe, c.LivenessProbe = nil, nil, nil
	svc := r.service
	svc.Name = d.Name

	var play []byte
	for _, obj := range []any{d, svc} {
		b, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		play = append(append(play, "---\n"...), b...)
	}
	// kube play builds the image from a folder named like it in the
	// current one, if there is such a folder: run it where there is none.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "play.yaml"), play, 0o644); err != nil {
		t.Fatal(err)
	}
	p.cleanup(dir, "kube", "down", "play.yaml")
	start := time.Now()
	p.run(dir, bound, "kube", "play", "play.yaml")
	container := d.Name + "-pod-0-" + c.Name
	logs := func() string { return p.logs(container) }
	waitReady(t, admin, logs)
	t.Logf("kube play: ready after %v", time.Since(start).Round(time.Millisecond))

	checkServes(t, addr)
	if s := httpStatus(t, "http://"+admin+"/healthz"); s != http.StatusOK {
		t.Errorf("/healthz: %d", s)
	}
	checkConfined(t, p, container, true) // allowPrivilegeEscalation: false
	if l := logs(); !regexp.MustCompile(`"msg":"listening on tcp://` + regexp.QuoteMeta(addr)).MatchString(l) {
		t.Errorf("no JSON log line saying it listens on %s:\n%s", addr, l)
	}
}

// TestImageTLS runs the image with the TLS component's arguments, the
// certificate and key mounted read-only where its Secret would be: podman
// 4.3's kube play panics on a Secret volume, so this is podman run with
// a bind mount. It answers over TLS, and over TCP and UDP as before.
func TestImageTLS(t *testing.T) {
	p := newPodman(t)
	image := p.buildImage()
	c := renderTLS(t).deployment.Spec.Template.Spec.Containers[0]
	var mount string
	for _, m := range c.VolumeMounts {
		if m.Name == "tls" {
			mount = m.MountPath
		}
	}
	certFile, _ := flagValue(c.Args, "--cert")
	keyFile, _ := flagValue(c.Args, "--key")
	dir := t.TempDir()
	// The container's uid 65532 reads them, as fsGroup lets it in a pod.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pool := writeCert(t, filepath.Join(dir, filepath.Base(certFile)), filepath.Join(dir, filepath.Base(keyFile)))

	ports := freePorts(t, 3)
	port, tlsPort, adminPort := ports[0], ports[1], ports[2]
	addr, tlsAddr, admin := fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.1:%d", tlsPort), fmt.Sprintf("127.0.0.1:%d", adminPort)
	args := slices.Clone(c.Args)
	for i, a := range args {
		switch a {
		case ":8080":
			args[i] = addr
		case "tls://:8443":
			args[i] = "tls://" + tlsAddr
		case ":9090":
			args[i] = admin
		}
	}
	if !slices.Contains(args, "tls://"+tlsAddr) {
		t.Fatalf("args %q: no tls://:8443 to put on loopback", c.Args)
	}
	name := "shout-test-" + unique()
	p.run(".", bound, append([]string{"run", "--detach", "--name", name, "--network", "host", "--read-only", "--cap-drop", "all",
		"--volume", dir + ":" + mount + ":ro", image}, args...)...)
	p.cleanup(".", "rm", "--force", "--time", "0", name)
	waitReady(t, admin, func() string { return p.logs(name) })

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: bound}, "tcp", tlsAddr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("tls %s: %v\n%s", tlsAddr, err, p.logs(name))
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(bound))
	io.WriteString(conn, "straße over tls\n")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if want := "STRASSE OVER TLS\n"; line != want || err != nil {
		t.Errorf("tls: got %q, %v; want %q", line, err, want)
	}
	checkServes(t, addr)
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files, readable by anyone, and returns a pool that trusts it.
func writeCert(t *testing.T, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for f, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// TestRemotePodman builds and runs the image through a remote podman, as
// on a Mac or Windows (podman talks to the Linux machine it runs images
// in) or with CONTAINER_HOST set: here a podman system service on a
// socket of the test's own. podman.sh gave such a podman --cgroup-manager
// and --runtime, flags it has not ("unknown flag: --cgroup-manager"), so
// deploy/image.sh failed wherever podman is remote.
func TestRemotePodman(t *testing.T) {
	p := newPodman(t)
	sock := filepath.Join(t.TempDir(), "podman.sock")
	ctx, cancel := context.WithCancel(context.Background())
	script, err := filepath.Abs("podman.sh")
	if err != nil {
		t.Fatal(err)
	}
	// The service is local podman, with the flags these machines need.
	service := p.cmd(ctx, ".", script, "system", "service", "--time", "0", "unix://"+sock)
	var serviceOut bytes.Buffer
	service.Stdout, service.Stderr = &serviceOut, &serviceOut
	// Stopped as a service is, not killed: it leaves nothing behind.
	service.Cancel = func() error { return service.Process.Signal(syscall.SIGTERM) }
	if err := service.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		service.Wait()
	})
	deadline := time.Now().Add(bound)
	for {
		// Listening, not only bound: a connection is taken.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			service.Wait() // (its output is whole, and no longer written)
			t.Fatalf("podman system service took no connection on %s within %v\n%s", sock, bound, serviceOut.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded by deadline
	}

	remote := &podman{t: t, env: append(slices.Clone(p.env), "CONTAINER_HOST=unix://"+sock)}
	out := remote.run(".", bound, "version")
	if !strings.Contains(out, "Client:") || !strings.Contains(out, "Server:") {
		t.Fatalf("podman.sh version through %s is not a remote podman's:\n%s", sock, out)
	}
	image := remote.buildImage()
	if out := remote.run(".", bound, "run", "--rm", "--network", "none", image, "version"); !strings.HasPrefix(out, "shout ") {
		t.Errorf("shout version through the remote podman: %q", out)
	}
}

// TestPodmanConfNotPlanted: podman.sh keeps its containers.conf in
// TMPDIR (often /tmp), under a name anyone can tell. It used any file it
// found there, so whoever wrote that file first chose what podman ran as
// root (conmon_path, runtimes, hooks); then a symlink or a directory
// planted in the moment before its move redirected it. The file now
// lives in a 0700 directory of podman.sh's own: a file there with other
// content is replaced, and a directory of that name that is a symlink is
// not used. podman here is a stand-in that says which containers.conf it
// was given, and what is in it.
func TestPodmanConfNotPlanted(t *testing.T) {
	bin, tmp := t.TempDir(), t.TempDir()
	fake := "#!/bin/sh\n" +
		"if [ \"$1\" = --help ]; then echo '      --cgroup-manager string'; exit 0; fi\n" +
		"echo \"$CONTAINERS_CONF\"; cat \"$CONTAINERS_CONF\"\n"
	if err := os.WriteFile(filepath.Join(bin, "podman"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"), "TMPDIR=" + tmp, "CONTAINERS_CONF="}
	run := func() (path, content string) {
		t.Helper()
		c := exec.Command("./podman.sh", "version")
		c.Env = append(os.Environ(), env...)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("podman.sh: %v\n%s", err, out)
		}
		path, content, _ = strings.Cut(string(out), "\n")
		return path, content
	}
	conf, want := run()
	dir := filepath.Dir(conf)
	if filepath.Dir(dir) != tmp || !strings.Contains(want, "default_ulimits") {
		t.Fatalf("podman.sh gave podman %s, holding %q: want a file in a directory of its own in TMPDIR, with default_ulimits", conf, want)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v, %v; want a directory only its owner enters (0700)", dir, fi.Mode(), err)
	}
	// Other content where podman.sh keeps its file.
	evil := "[engine]\nconmon_path = [\"/nonexistent/evil\"]\n"
	if err := os.WriteFile(conf, []byte(evil), 0o666); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 {
		if err := os.Chown(conf, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	if path, got := run(); path != conf || got != want {
		t.Errorf("with other content in %s, podman.sh gave podman %s, holding:\n%s\nwant %s, holding:\n%s", conf, path, got, conf, want)
	}
	// Someone's symlink where podman.sh's directory goes, to a directory
	// with their file in it.
	theirs := t.TempDir()
	if err := os.WriteFile(filepath.Join(theirs, filepath.Base(conf)), []byte(evil), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(theirs, dir); err != nil {
		t.Fatal(err)
	}
	if path, got := run(); strings.HasPrefix(path, dir+"/") || got != want {
		t.Errorf("with %s a symlink to %s, podman.sh gave podman %s, holding:\n%s\nwant a file elsewhere, holding:\n%s", dir, theirs, path, got, want)
	}
}

// TestImageArch: GOARCH chooses the binary's architecture (deploy/image.sh
// builds it for GOARCH, by default go env GOARCH), and the image must say
// the same, or a registry, podman and the nodes take it for the build
// machine's: GOARCH=arm64 on an amd64 machine made an image that said
// amd64 around an arm64 binary.
func TestImageArch(t *testing.T) {
	p := newPodman(t)
	arch := "arm64"
	if runtime.GOARCH == "arm64" {
		arch = "amd64"
	}
	p.env = append(p.env, "GOARCH="+arch)
	image := p.buildImage()
	if got := strings.TrimSpace(p.run(".", bound, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", image)); got != "linux/"+arch {
		t.Errorf("GOARCH=%s deploy/image.sh made an image for %s, want linux/%s", arch, got, arch)
	}
}
