package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"istio.io/istio/pkg/test/echo"
	echoproto "istio.io/istio/pkg/test/echo/proto"
)

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until cond holds or fails the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	echoID  = "spiffe://cluster.local/ns/default/sa/echo"
	sleepID = "spiffe://cluster.local/ns/default/sa/sleep"
)

// startTestInbound runs Istio's echo server and an inbound in front of it on 127.0.0.1.
func startTestInbound(t *testing.T, ca *testCA) (string, *syncBuffer) {
	t.Helper()
	o := &options{appPorts: []int{8080}, clusterID: "cluster1", namespace: "default", labels: map[string]string{"version": "v1"}}
	srv, upstreams, err := tryEcho(o, "127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	serverCert := ca.workload(t, echoID)
	logs := &syncBuffer{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := newInbound(inboundConfig{
		Name:        l.Addr().String(),
		Upstream:    upstreams[8080],
		Certificate: func() (*tls.Certificate, error) { return serverCert, nil },
		Roots:       func() (*x509.CertPool, error) { return ca.pool(), nil },
		Log:         (&logger{w: logs}).Printf,
		PeekTimeout: time.Second,
	})
	go func() { _ = in.Serve(l) }()
	t.Cleanup(func() { _ = l.Close(); _ = in.Close() })
	return l.Addr().String(), logs
}

func parseEcho(t *testing.T, body string) echo.Response {
	t.Helper()
	return echo.ParseResponses(&echoproto.ForwardEchoRequest{}, &echoproto.ForwardEchoResponse{Output: []string{body}})[0]
}

// get sends one HTTP/1.1 request over conn with extra headers and returns the body.
func get(t *testing.T, conn net.Conn, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://echo.default.svc.cluster.local/hello", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufioReader(conn), req)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestInboundMTLS(t *testing.T) {
	ca := newTestCA(t, "tailmesh", "cluster1")
	addr, logs := startTestInbound(t, ca)
	client := ca.workload(t, sleepID)

	conn, err := tls.Dial("tcp", addr, &tls.Config{
		ServerName:           "outbound_.80_._.echo.default.svc.cluster.local",
		NextProtos:           []string{"istio-peer-exchange", "istio"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil },
		RootCAs:              ca.pool(),
		VerifyConnection: func(cs tls.ConnectionState) error {
			if got := uriSANs(cs.PeerCertificates[0]); len(got) != 1 || got[0] != echoID {
				return fmt.Errorf("server identity %v", got)
			}
			return nil
		},
		InsecureSkipVerify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "istio-peer-exchange" {
		t.Errorf("ALPN = %q", p)
	}
	// A forged header from the caller stays in front (APPEND_FORWARD); ours is the last element.
	code, body := get(t, conn, map[string]string{headerXFCC: "By=spiffe://forged;URI=spiffe://forged", headerPeerIssuer: "forged"})
	if code != 200 {
		t.Fatalf("code %d: %s", code, body)
	}
	r := parseEcho(t, body)
	xfcc := r.RequestHeaders.Get(headerXFCC)
	if !strings.HasPrefix(xfcc, "By=spiffe://forged;URI=spiffe://forged,By="+echoID+";Hash=") ||
		!strings.HasSuffix(xfcc, `;Subject="";URI=`+sleepID) {
		t.Errorf("XFCC = %q", xfcc)
	}
	if got := xfccURI(xfcc); got != sleepID {
		t.Errorf("xfccURI = %q", got)
	}
	if got := r.RequestHeaders.Values(headerPeerIssuer); len(got) != 1 || !strings.HasPrefix(got[0], "CN=Intermediate CA,O=tailmesh,L=cluster1; sha256=") {
		t.Errorf("issuer header = %q", got)
	}
	if r.Cluster != "cluster1" || r.Version != "v1" || r.Host != "echo.default.svc.cluster.local" || r.URL != "/hello" {
		t.Errorf("echo saw cluster=%q version=%q host=%q url=%q", r.Cluster, r.Version, r.Host, r.URL)
	}
	if logs.String() != "" {
		t.Errorf("logs: %s", logs)
	}
}

func TestInboundPlaintext(t *testing.T) {
	ca := newTestCA(t, "tailmesh", "cluster1")
	addr, _ := startTestInbound(t, ca)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	code, body := get(t, conn, map[string]string{headerXFCC: "By=x;URI=spiffe://forged", headerPeerIssuer: "forged"})
	r := parseEcho(t, body)
	if code != 200 || r.RequestHeaders.Get(headerXFCC) != "" || r.RequestHeaders.Get(headerPeerIssuer) != "" {
		t.Errorf("code %d, identity headers survived plaintext:\n%s", code, body)
	}

	// Prior-knowledge HTTP/2 is detected as Envoy's codec AUTO does.
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	resp, err := c.Get("http://" + addr + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if r := parseEcho(t, string(b)); resp.StatusCode != 200 || r.Protocol != "HTTP/1.1" || resp.Proto != "HTTP/2.0" {
		t.Errorf("h2c: %s code %d, upstream protocol %q", resp.Proto, resp.StatusCode, r.Protocol)
	}
}

func TestInboundHandshakeFailuresLogged(t *testing.T) {
	ca := newTestCA(t, "tailmesh", "cluster1")
	addr, logs := startTestInbound(t, ca)

	// A client certificate from another root: Envoy's validator rejects it; one log line says why.
	other := newTestCA(t, "other-mesh", "cluster9")
	rogue := other.workload(t, sleepID)
	conn, err := tls.Dial("tcp", addr, &tls.Config{
		NextProtos:           []string{"istio"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return rogue, nil },
		InsecureSkipVerify:   true,
	})
	if err == nil {
		// TLS 1.3: the client learns of the rejection on its first read.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("client error = %v", err)
	}
	waitFor(t, "the root mismatch log line", func() bool { return strings.Contains(logs.String(), "root mismatch") })
	line := strings.TrimSpace(logs.String())
	if strings.Count(line, "\n") != 0 || !strings.Contains(line, "TLS handshake from 127.0.0.1:") ||
		!strings.Contains(line, "x509: certificate signed by unknown authority") {
		t.Errorf("log = %q", line)
	}

	// No client certificate at all.
	conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Read(make([]byte, 1))
		conn.Close()
	}
	waitFor(t, "the missing certificate log line", func() bool { return strings.Contains(logs.String(), "client didn't provide a certificate") })
}

func TestXFCC(t *testing.T) {
	ca := newTestCA(t, "tailmesh", "cluster1")
	peer := ca.workload(t, sleepID).Leaf
	elem := xfccElement([]string{echoID}, peer)
	parts := strings.Split(elem, ";")
	if len(parts) != 4 || parts[0] != "By="+echoID || !strings.HasPrefix(parts[1], "Hash=") || len(parts[1]) != 5+64 ||
		parts[2] != `Subject=""` || parts[3] != "URI="+sleepID {
		t.Errorf("element = %q", elem)
	}
	for header, want := range map[string]string{
		"":                    "",
		"By=a;URI=spiffe://x": "spiffe://x",
		`By=a;Subject="O=a,CN=b;c";URI=u1,By=b;Subject="x,y";URI=u2`: "u2",
		`By=a;URI=u1,By=b;Hash=h;Subject="CN=a,b"`:                   "",
	} {
		if got := xfccURI(header); got != want {
			t.Errorf("xfccURI(%q) = %q, want %q", header, got, want)
		}
	}
	if got := appendXFCC("", "b"); got != "b" {
		t.Errorf("append to empty = %q", got)
	}
	if got := appendXFCC("a", "b"); got != "a,b" {
		t.Errorf("append = %q", got)
	}
}

func TestEchoBindIP(t *testing.T) {
	for ip, want := range map[string]string{"10.101.0.7": "127.101.0.7", "127.0.0.5": "", "fd00::1": "", "x": ""} {
		if got := echoBindIP(ip); got != want {
			t.Errorf("echoBindIP(%s) = %q, want %q", ip, got, want)
		}
	}
}
