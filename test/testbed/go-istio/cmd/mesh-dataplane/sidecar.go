package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"istio.io/istio/pkg/config/protocol"
	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/test/echo/common"
	"istio.io/istio/pkg/test/echo/server"

	"tailmesh.dev/testbed-istio/internal/ads"
)

const (
	headerXFCC = "X-Forwarded-Client-Cert"
	// headerPeerIssuer names the issuer of the caller's leaf certificate (its intermediate CA):
	// its subject and, since every member's intermediate may carry the same subject, the SHA-256
	// fingerprint of the issuing certificate the caller presented in its chain, so tests can tell which cluster's CA issued the caller's identity. It is the
	// test bed's own header; Envoy has no equivalent.
	headerPeerIssuer = "X-Tailmesh-Peer-Issuer"
)

// inboundALPN is what the inbound accepts in a ClientHello. Envoy's inbound mTLS filter chains
// match the in-mesh ALPNs clients send (pilot/pkg/networking/core/listener.go allIstioMtlsALPNs,
// from the upstream side pilot/pkg/networking/util/util.go ALPNInMeshWithMxc and friends), and
// its DownstreamTlsContext advertises istio-peer-exchange, h2, http/1.1
// (pilot/pkg/security/authn/utils/utils.go, util.ALPNDownstreamWithMxc). Go's TLS server fails a
// handshake without a common protocol where BoringSSL carries on, so the union is listed.
var inboundALPN = []string{"istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2", "h2", "http/1.1"}

// inboundConfig configures one sidecar inbound listener.
type inboundConfig struct {
	// Name is "<pod-ip>:<port>", for logs.
	Name string
	// Upstream is the application's address, host:port.
	Upstream string
	// Certificate is the workload certificate chain and key to present (Leaf set or parsable).
	Certificate func() (*tls.Certificate, error)
	// Roots is the mesh root that client certificates must chain to.
	Roots func() (*x509.CertPool, error)
	Log   func(format string, args ...any)
	// PeekTimeout bounds the wait for the first bytes (Envoy's listener_filters_timeout; after
	// it, Istio's inbound carries on as plaintext: continue_on_listener_filters_timeout).
	PeekTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake.
	HandshakeTimeout time.Duration
}

// inbound stands in for the sidecar's inbound listener (Envoy's virtualInbound, built by
// pilot/pkg/networking/core/listener_inbound.go) for an HTTP port in PERMISSIVE mode: a TLS
// ClientHello gets the mTLS filter chain (the workload certificate, a client certificate
// required and verified against the mesh root), anything else the plaintext chain; both end in
// an HTTP connection manager that proxies to the application.
type inbound struct {
	cfg      inboundConfig
	upstream *url.URL
	srv      *http.Server
	queue    *connQueue
}

// peerInfo is what the mTLS handshake established about the caller.
type peerInfo struct {
	leaf *x509.Certificate
	// issuer is the certificate that signed leaf, from the verified chain (nil if the leaf was
	// signed by the root itself).
	issuer *x509.Certificate
	// by are the URI SANs of the certificate this side presented.
	by []string
}

type peerKey struct{}

func newInbound(cfg inboundConfig) *inbound {
	if cfg.PeekTimeout == 0 {
		cfg.PeekTimeout = 5 * time.Second
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	in := &inbound{cfg: cfg, upstream: &url.URL{Scheme: "http", Host: cfg.Upstream}}
	proxy := &httputil.ReverseProxy{
		Rewrite: in.rewrite,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     time.Minute,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cfg.Log("inbound %s: upstream %s: %v", cfg.Name, cfg.Upstream, err)
			// Envoy's local reply when the upstream fails.
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "upstream connect error or disconnect/reset before headers. reset reason: "+err.Error())
		},
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// Envoy's HTTP connection manager detects HTTP/2 by its preface (codec_type AUTO); after
	// TLS termination the server sees a plain stream, so prior-knowledge HTTP/2 is allowed.
	protocols.SetUnencryptedHTTP2(true)
	in.srv = &http.Server{
		Handler:           proxy,
		Protocols:         protocols,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       time.Hour,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if mc, ok := c.(*meshConn); ok && mc.peer != nil {
				return context.WithValue(ctx, peerKey{}, mc.peer)
			}
			return ctx
		},
	}
	return in
}

// Serve accepts connections on l until it is closed.
func (in *inbound) Serve(l net.Listener) error {
	in.queue = newConnQueue(l.Addr())
	go func() { _ = in.srv.Serve(in.queue) }()
	for {
		c, err := l.Accept()
		if err != nil {
			in.queue.Close()
			return err
		}
		go in.handle(c)
	}
}

// Close stops serving.
func (in *inbound) Close() error { return in.srv.Close() }

// handle picks the filter chain as Envoy's tls_inspector and filter chain match do: a TLS
// ClientHello (record type 22, version 3.x) goes to the mTLS chain, anything else to plaintext.
func (in *inbound) handle(c net.Conn) {
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(in.cfg.PeekTimeout))
	head, _ := br.Peek(3)
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	if !looksLikeClientHello(head) {
		in.queue.push(&meshConn{Conn: pc})
		return
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: inboundALPN,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return in.cfg.Certificate()
		},
		// The chain is verified in VerifyConnection against the current root file; requesting
		// without CA names, as Envoy does, so clients send their certificate whatever its root.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			roots, err := in.cfg.Roots()
			if err != nil {
				return err
			}
			_, err = verifyChain(cs.PeerCertificates, roots)
			return err
		},
	}
	tc := tls.Server(pc, conf)
	ctx, cancel := context.WithTimeout(context.Background(), in.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		in.cfg.Log("inbound %s: TLS handshake from %s failed: %s", in.cfg.Name, c.RemoteAddr(), handshakeReason(err))
		_ = c.Close()
		return
	}
	cs := tc.ConnectionState()
	p := &peerInfo{leaf: cs.PeerCertificates[0]}
	// The issuer as the caller presented it in its chain (workload chains carry the
	// intermediate: security/pkg/nodeagent/cache/secretcache.go), the one that signed the leaf.
	for _, c := range cs.PeerCertificates[1:] {
		if p.leaf.CheckSignatureFrom(c) == nil {
			p.issuer = c
			break
		}
	}
	if own, err := in.cfg.Certificate(); err == nil {
		if leaf, err := leafOf(own); err == nil {
			p.by = uriSANs(leaf)
		}
	}
	in.queue.push(&meshConn{Conn: tc, peer: p})
}

// rewrite is the HTTP connection manager's request mutation on the way to the application.
func (in *inbound) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(in.upstream)
	pr.Out.Host = pr.In.Host
	pr.Out.Header.Del(headerPeerIssuer)
	p, _ := pr.In.Context().Value(peerKey{}).(*peerInfo)
	if p == nil {
		// Not mutual TLS: Envoy removes the header (conn_manager_utility.cc mutateXfccRequestHeader).
		pr.Out.Header.Del(headerXFCC)
		return
	}
	prev := strings.Join(pr.In.Header.Values(headerXFCC), ",")
	pr.Out.Header.Set(headerXFCC, appendXFCC(prev, xfccElement(p.by, p.leaf)))
	pr.Out.Header.Set(headerPeerIssuer, peerIssuer(p))
}

// peerIssuer is the X-Tailmesh-Peer-Issuer value: `<issuer subject>; sha256=<AA:BB:...>`, the
// fingerprint in the colon-separated upper-case form Node's X509Certificate.fingerprint256 prints.
func peerIssuer(p *peerInfo) string {
	if p.issuer == nil {
		return p.leaf.Issuer.String()
	}
	sum := sha256.Sum256(p.issuer.Raw)
	hex := make([]string, len(sum))
	for i, b := range sum {
		hex[i] = fmt.Sprintf("%02X", b)
	}
	return p.leaf.Issuer.String() + "; sha256=" + strings.Join(hex, ":")
}

// xfccElement is the element Envoy adds to X-Forwarded-Client-Cert for a mutual TLS connection
// (https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
// and Envoy's source/common/http/conn_manager_utility.cc): By= for each URI SAN of the local certificate,
// Hash= the peer certificate's SHA-256, then the details Istio's inbound asks for with
// set_current_client_cert_details (pilot/pkg/networking/core/listener_inbound.go
// buildSidecarInboundHTTPOpts: Subject, URI and DNS): Subject="...", URI= for each peer URI SAN
// (empty when none), DNS= for each peer DNS SAN.
func xfccElement(by []string, peer *x509.Certificate) string {
	var parts []string
	for _, u := range by {
		parts = append(parts, "By="+u)
	}
	sum := sha256.Sum256(peer.Raw)
	parts = append(parts, "Hash="+hex.EncodeToString(sum[:]))
	parts = append(parts, `Subject="`+peer.Subject.String()+`"`)
	uris := uriSANs(peer)
	if len(uris) == 0 {
		parts = append(parts, "URI=")
	}
	for _, u := range uris {
		parts = append(parts, "URI="+u)
	}
	for _, d := range peer.DNSNames {
		parts = append(parts, "DNS="+d)
	}
	return strings.Join(parts, ";")
}

// appendXFCC is forward_client_cert_details APPEND_FORWARD, which Istio's sidecar inbound uses
// (pilot/pkg/networking/util/proxy_headers.go GetProxyHeaders): the new element goes after
// whatever the caller sent.
func appendXFCC(prev, elem string) string {
	if prev == "" {
		return elem
	}
	return prev + "," + elem
}

// xfccURI returns the URI= value of the last element of an X-Forwarded-Client-Cert header: the
// one the callee's own sidecar appended.
func xfccURI(header string) string {
	if header == "" {
		return ""
	}
	elems := splitXFCC(header, ',')
	for _, kv := range splitXFCC(elems[len(elems)-1], ';') {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(strings.TrimSpace(k), "URI") {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// splitXFCC splits on sep outside double quotes (Subject values are quoted and may hold commas).
func splitXFCC(s string, sep rune) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
		case r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case r == sep && !quoted:
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(out, cur.String())
}

// handshakeReason says why a handshake failed, naming the usual mesh causes.
func handshakeReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	msg := err.Error()
	switch {
	case errors.As(err, &unknown):
		return msg + " (root mismatch: the peer's certificate chain does not lead to the mesh root in the root certificate file)"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return msg + " (expired certificate)"
	case strings.Contains(msg, "client didn't provide a certificate"):
		return msg + " (the client sent no certificate: not an Istio mTLS client)"
	case strings.Contains(msg, "remote error"):
		return msg + " (the client rejected this workload's certificate)"
	}
	return msg
}

func looksLikeClientHello(b []byte) bool {
	return len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04
}

func leafOf(c *tls.Certificate) (*x509.Certificate, error) {
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, errors.New("empty certificate")
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// peekedConn reads what was peeked before the rest of the connection.
type peekedConn struct {
	net.Conn
	r io.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// meshConn is an accepted connection with what the inbound learned about its peer. It hides the
// TLS connection from net/http on purpose: the HTTP server sees the decrypted stream.
type meshConn struct {
	net.Conn
	peer *peerInfo
}

// connQueue is a net.Listener fed with connections the inbound has classified.
type connQueue struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) {
	select {
	case q.ch <- c:
	case <-q.done:
		_ = c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.closed.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// echoBindIP is where the application listens: not the pod IP (the inbound owns the app ports
// there, as Envoy owns them through iptables in a real pod) but a loopback address derived from
// it, 127.<b>.<c>.<d> for pod IP a.b.c.d, so the echo server can keep the app port and report it
// as ServicePort. Falls back to 127.0.0.1 with ephemeral ports when that does not work.
func echoBindIP(podIP string) string {
	a, err := netip.ParseAddr(podIP)
	if err != nil || !a.Is4() || a.IsLoopback() {
		return ""
	}
	b := a.As4()
	return netip.AddrFrom4([4]byte{127, b[1], b[2], b[3]}).String()
}

// startEcho runs Istio's echo server (pkg/test/echo/server, as the echo image's
// pkg/test/echo/cmd/server runs it) with one HTTP port per app port, reporting the pod's cluster
// and version label like the echo deployments of Istio's tests (--cluster, --version). It returns
// the upstream address of each app port.
func startEcho(o *options, log *logger) (*server.Instance, map[int]string, error) {
	if ip := echoBindIP(o.podIP); ip != "" {
		s, addrs, err := tryEcho(o, ip, true)
		if err == nil {
			return s, addrs, nil
		}
		log.Printf("echo server on %s with the app ports: %v; using ephemeral ports on 127.0.0.1", ip, err)
	}
	return tryEcho(o, "127.0.0.1", false)
}

func tryEcho(o *options, ip string, keepPorts bool) (*server.Instance, map[int]string, error) {
	// The echo server binds BindIPPortsMap ports to INSTANCE_IP (pkg/test/echo/server/instance.go
	// getListenerIPs).
	if err := os.Setenv("INSTANCE_IP", ip); err != nil {
		return nil, nil, err
	}
	ports := common.PortList{}
	bind := map[int]struct{}{}
	for i, p := range o.appPorts {
		listen := p
		if !keepPorts {
			listen = 0
		}
		ports = append(ports, &common.Port{Name: "http-" + strconv.Itoa(i), Protocol: protocol.HTTP, Port: listen})
		bind[listen] = struct{}{}
	}
	s := server.New(server.Config{
		Ports:          ports,
		BindIPPortsMap: bind,
		Cluster:        o.clusterID,
		Version:        o.labels["version"],
		Namespace:      o.namespace,
		ReportRequest:  func() {},
	})
	if err := s.Start(); err != nil {
		return nil, nil, err
	}
	addrs := map[int]string{}
	for i, p := range o.appPorts {
		// Start stores the bound port back into the Port (pkg/test/echo/server/endpoint/http.go).
		addrs[p] = net.JoinHostPort(ip, strconv.Itoa(ports[i].Port))
	}
	return s, addrs, nil
}

func runSidecar(ctx context.Context, o *options, stdout io.Writer, log *logger) int {
	if code, supervised := ensureHostname(ctx, o, stdout, log); supervised {
		return code
	}
	// A pod without ports (the recipe's curl client) only sends: no app, no inbound.
	upstreams := map[int]string{}
	if len(o.appPorts) > 0 {
		echoSrv, addrs, err := startEcho(o, log)
		if err != nil {
			log.Printf("starting the echo server: %v", err)
			return 1
		}
		defer echoSrv.Close()
		upstreams = addrs
	}
	for _, p := range o.appPorts {
		log.Printf("echo server for app port %d on %s", p, upstreams[p])
	}

	roots := &rootSource{path: o.rootCert}
	certs := newCertManager(o, roots, log)
	go certs.run(ctx)
	if o.xds != "" {
		n, err := o.node(pm.SidecarProxy)
		if err != nil {
			log.Printf("building node metadata: %v", err)
			return 1
		}
		// Presence only: a real sidecar's Envoy subscribes to CDS, LDS and the EDS of every
		// cluster; nothing received is used here.
		loop := newADSLoop(adsConfig(o, n, true, nil), (*ads.Session).Ready, log)
		go loop.run(ctx, nil)
	}

	// Envoy keeps listeners that need a certificate warming until SDS delivers it, so the ports
	// open only once the first certificate is held.
	select {
	case <-certs.Ready():
	case <-ctx.Done():
		return 0
	}
	var inbounds []*inbound
	defer func() {
		for _, in := range inbounds {
			_ = in.Close()
		}
	}()
	for _, p := range o.appPorts {
		addr := net.JoinHostPort(o.podIP, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			log.Printf("inbound listener: %v", err)
			return 1
		}
		defer l.Close()
		in := newInbound(inboundConfig{
			Name:        addr,
			Upstream:    upstreams[p],
			Certificate: certs.Certificate,
			Roots:       roots.Pool,
			Log:         log.Printf,
		})
		inbounds = append(inbounds, in)
		go func() { _ = in.Serve(l) }()
		log.Printf("inbound %s (PERMISSIVE: mTLS or plaintext) -> echo %s", addr, upstreams[p])
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	log.Printf("shutting down")
	return 0
}
