package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"istio.io/istio/pilot/pkg/model"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/pki/ca"
	caserver "istio.io/istio/security/pkg/server/ca"
)

// tokenAuthenticator stands in for istiod's Kubernetes JWT authenticator
// (security/pkg/server/ca/authenticate/kubeauth): the token "sa:<namespace>/<name>" proves that
// ServiceAccount.
type tokenAuthenticator struct{}

func (tokenAuthenticator) AuthenticatorType() string { return "TestTokenAuthenticator" }

func (tokenAuthenticator) Authenticate(ctx security.AuthContext) (*security.Caller, error) {
	tok, err := security.ExtractBearerToken(ctx.GrpcContext)
	if err != nil {
		return nil, err
	}
	ns, sa, ok := strings.Cut(strings.TrimPrefix(tok, "sa:"), "/")
	if !ok || !strings.HasPrefix(tok, "sa:") {
		return nil, fmt.Errorf("unknown token")
	}
	return &security.Caller{AuthSource: security.AuthSourceIDToken,
		Identities: []string{fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", ns, sa)}}, nil
}

// startCA runs istiod's CA service (security/pkg/server/ca) with a plugged-in intermediate
// (security/pkg/pki/ca NewPluggedCertIstioCAOptions, as istiod loads cacerts), over TLS with a
// serving certificate for istiod.istio-system.svc. It returns the address and the root file.
func startCA(t *testing.T, pki *testCA, dir string) (string, string) {
	t.Helper()
	files := map[string][]byte{
		"ca-cert.pem":    pemOf(pki.inter),
		"ca-key.pem":     keyPEM(t, pki.interKey),
		"cert-chain.pem": pemOf(pki.inter, pki.root),
		"root-cert.pem":  pemOf(pki.root),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := ca.NewPluggedCertIstioCAOptions(ca.SigningCAFileBundle{
		RootCertFile:    filepath.Join(dir, "root-cert.pem"),
		CertChainFiles:  []string{filepath.Join(dir, "cert-chain.pem")},
		SigningCertFile: filepath.Join(dir, "ca-cert.pem"),
		SigningKeyFile:  filepath.Join(dir, "ca-key.pem"),
	}, time.Hour, 48*time.Hour, 2048)
	if err != nil {
		t.Fatal(err)
	}
	istioCA, err := ca.NewIstioCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := caserver.New(istioCA, time.Hour, []security.Authenticator{tokenAuthenticator{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serving := pki.serving(t, "istiod.istio-system.svc")
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{serving}})))
	srv.Register(g)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(l) }()
	t.Cleanup(g.Stop)
	return l.Addr().String(), filepath.Join(dir, "root-cert.pem")
}

// The mesh: echo with one mTLS endpoint and one plaintext endpoint on network1, one mTLS
// endpoint on network2 reached through network2's east-west gateway, and the AUTO_PASSTHROUGH
// Gateway the multicluster recipe puts on east-west gateways.
const e2eMesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: echo
  namespace: default
spec:
  hosts: [echo.default.svc.cluster.local]
  addresses: [10.96.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - {name: http, number: 80, protocol: HTTP, targetPort: 5678}
  endpoints:
  - {address: 127.0.10.7, network: network1, locality: region1/zone1, serviceAccount: echo, labels: {app: echo, security.istio.io/tlsMode: istio}}
  - {address: 127.0.10.8, network: network1, locality: region1/zone1, labels: {app: echo}}
  - {address: 127.0.20.9, network: network2, locality: region2/zone2, serviceAccount: echo, labels: {app: echo, security.istio.io/tlsMode: istio}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: cross-network-gateway
  namespace: istio-system
spec:
  selector:
    istio: eastwestgateway
  servers:
  - port: {number: 15443, name: tls, protocol: TLS}
    tls: {mode: AUTO_PASSTHROUGH}
    hosts: ["*.local"]
`

type e2eEnv struct {
	xds, ca, root, dir string
}

func (e *e2eEnv) identity(t *testing.T, podIP, pod, ns, sa, cluster, network string) []string {
	t.Helper()
	token := filepath.Join(e.dir, pod+".token")
	if err := os.WriteFile(token, []byte("sa:"+ns+"/"+sa+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--pod-ip", podIP, "--pod", pod, "--namespace", ns, "--service-account", sa, "--cluster-id", cluster,
		"--network", network, "--xds", e.xds, "--ca", e.ca, "--root-cert", e.root, "--token-file", token}
}

// startProxy runs a long-lived subcommand and waits for its "ready" line.
func startProxy(t *testing.T, ctx context.Context, args ...string) *syncBuffer {
	t.Helper()
	o, err := parseFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	stdout, logs := &syncBuffer{}, &syncBuffer{}
	log := &logger{w: logs, prefix: o.cmd + " " + o.pod + ": "}
	done := make(chan int, 1)
	go func() {
		if o.cmd == "sidecar" {
			done <- runSidecar(ctx, o, stdout, log)
		} else {
			done <- runGateway(ctx, o, stdout, log)
		}
	}()
	t.Cleanup(func() {
		if testing.Verbose() || t.Failed() {
			t.Logf("%s logs:\n%s", o.pod, logs)
		}
	})
	deadline := time.After(20 * time.Second)
	for stdout.String() != "ready\n" {
		select {
		case code := <-done:
			t.Fatalf("%s exited with %d before it was ready:\n%s", o.pod, code, logs)
		case <-deadline:
			t.Fatalf("%s not ready:\n%s", o.pod, logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return logs
}

func runClientOnce(t *testing.T, args ...string) (int, *clientOutput, string) {
	t.Helper()
	o, err := parseFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	logs := &syncBuffer{}
	code := runClient(context.Background(), o, &stdout, &logger{w: logs})
	if code != 0 {
		return code, nil, logs.String()
	}
	out := &clientOutput{}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("stdout is not the client's JSON (%v):\n%s", err, stdout.String())
	}
	return code, out, logs.String()
}

func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts istiod's xDS server and CA")
	}
	s := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{
		ConfigString: e2eMesh,
		Gateways: []model.NetworkGateway{{
			Network: "network2", Cluster: "cluster2", Addr: "127.0.20.20", Port: 15443,
		}},
		ListenerBuilder: func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
	})
	dir := t.TempDir()
	pki := newTestCA(t, "cluster.local", "cluster1")
	caAddr, root := startCA(t, pki, dir)
	env := &e2eEnv{xds: s.Listener.Addr().String(), ca: caAddr, root: root, dir: dir}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	startProxy(t, ctx, append([]string{"sidecar", "--app-port", "5678", "--label", "version=v1"},
		env.identity(t, "127.0.10.7", "echo-a", "default", "echo", "cluster1", "network1")...)...)
	startProxy(t, ctx, append([]string{"sidecar", "--app-port", "5678"},
		env.identity(t, "127.0.10.8", "echo-plain", "default", "echo", "cluster1", "network1")...)...)
	startProxy(t, ctx, append([]string{"sidecar", "--app-port", "5678"},
		env.identity(t, "127.0.20.9", "echo-b", "default", "echo", "cluster2", "network2")...)...)
	// The east-west gateway's pod sets ISTIO_META_REQUESTED_NETWORK_VIEW to its network
	// (samples/multicluster/gen-eastwest-gateway.sh), so istiod sends it only that network's endpoints.
	gwLogs := startProxy(t, ctx, append([]string{"gateway", "--port", "15443", "--label", "istio=eastwestgateway", "--meta", "REQUESTED_NETWORK_VIEW=network2"},
		env.identity(t, "127.0.20.20", "istio-eastwestgateway-1", "istio-system", "istio-eastwestgateway", "cluster2", "network2")...)...)

	clientArgs := append([]string{"client", "--host", "echo.default.svc.cluster.local", "--port", "80", "--count", "60", "--timeout", "5s"},
		env.identity(t, "127.0.10.50", "sleep-1", "default", "sleep", "cluster1", "network1")...)
	code, out, logs := runClientOnce(t, clientArgs...)
	if code != 0 {
		t.Fatalf("client exit %d:\n%s", code, logs)
	}
	if testing.Verbose() {
		b, _ := json.MarshalIndent(out, "", "  ")
		t.Logf("client output:\n%s", b)
	}
	if out.Cluster != "outbound|80||echo.default.svc.cluster.local" || out.Node.Identity != sleepID ||
		out.Node.ID != "sidecar~127.0.10.50~sleep-1.default~default.svc.cluster.local" || out.Error != "" {
		t.Errorf("output head: %+v %q %q", out.Node, out.Cluster, out.Error)
	}
	eps := map[string]clientEndpoint{}
	for _, e := range out.Endpoints {
		eps[fmt.Sprintf("%s:%d", e.Address, e.Port)] = e
	}
	if e := eps["127.0.10.7:5678"]; e.TransportSocket != "tlsMode-istio" || e.TLSMode != "istio" {
		t.Errorf("endpoint a: %+v", e)
	}
	if e := eps["127.0.10.8:5678"]; e.TransportSocket != "tlsMode-disabled" {
		t.Errorf("endpoint plain: %+v", e)
	}
	if e := eps["127.0.20.20:15443"]; e.TransportSocket != "tlsMode-istio" || e.Cluster != "cluster2" {
		t.Errorf("endpoint through the gateway: %+v (all: %+v)", e, out.Endpoints)
	}
	seen := map[string]int{}
	for _, r := range out.Requests {
		if r.Error != "" || r.Code != 200 || r.DurationMs <= 0 || r.Hostname == "" {
			t.Errorf("request failed: %+v", r)
			continue
		}
		seen[r.Endpoint]++
		switch r.Endpoint {
		case "127.0.10.7:5678", "127.0.20.20:15443":
			wantCluster := map[string]string{"127.0.10.7:5678": "cluster1", "127.0.20.20:15443": "cluster2"}[r.Endpoint]
			if !r.TLS || r.SNI != "outbound_.80_._.echo.default.svc.cluster.local" || r.PeerIdentity != echoID ||
				r.ServerSawClient != sleepID || !strings.HasPrefix(r.ServerSawIssuer, "CN=Intermediate CA,O=cluster.local,L=cluster1; sha256=") ||
				r.Cluster != wantCluster || r.ALPN != "istio-peer-exchange" {
				t.Errorf("mTLS request: %+v", r)
			}
		case "127.0.10.8:5678":
			if r.TLS || r.ServerSawClient != "" || r.ServerSawIssuer != "" || r.Cluster != "cluster1" {
				t.Errorf("plaintext request: %+v", r)
			}
		default:
			t.Errorf("unexpected endpoint: %+v", r)
		}
	}
	if len(seen) != 3 {
		t.Errorf("endpoints reached: %v", seen)
	}

	// The gateway refuses SNI it has no route for, with one log line.
	conn, err := tls.Dial("tcp", "127.0.20.20:15443", &tls.Config{ServerName: "outbound_.81_._.nope.default.svc.cluster.local",
		NextProtos: []string{"istio"}, InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Error("the gateway completed a handshake for an unknown SNI")
	}
	waitFor(t, "the gateway's no-route log line", func() bool {
		return strings.Contains(gwLogs.String(), "no route for SNI outbound_.81_._.nope.default.svc.cluster.local")
	})

	// The CA refuses a token: the client gives up within count × timeout with exit 1.
	bad := append([]string{"client", "--host", "echo.default.svc.cluster.local", "--port", "80", "--timeout", "2s"},
		env.identity(t, "127.0.10.51", "sleep-2", "default", "sleep", "cluster1", "network1")...)
	if err := os.WriteFile(filepath.Join(dir, "sleep-2.token"), []byte("forged"), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, _, logs = runClientOnce(t, bad...)
	if code != 1 || !strings.Contains(logs, "no workload certificate for spiffe://cluster.local/ns/default/sa/sleep") ||
		!strings.Contains(logs, "request authenticate failure") || time.Since(start) > 10*time.Second {
		t.Errorf("forged token: exit %d after %s, logs:\n%s", code, time.Since(start), logs)
	}
	if strings.Contains(logs, "forged") {
		t.Errorf("the token's content was logged:\n%s", logs)
	}
}
