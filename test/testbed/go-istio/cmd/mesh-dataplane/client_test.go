package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pkg/config/labels"
	"istio.io/istio/pkg/wellknown"
)

// istioCluster is a cluster as pilot/pkg/networking/core/cluster_tls.go builds it with auto mTLS.
func istioCluster(t *testing.T, sans ...string) *clusterv3.Cluster {
	t.Helper()
	ctx := &tlsv3.UpstreamTlsContext{
		Sni: "outbound_.80_._.echo.default.svc.cluster.local",
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols: util.ALPNInMeshWithMxc,
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{MatchSubjectAltNames: util.StringToExactMatch(sans)},
				},
			},
		},
	}
	a, err := anypb.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := edsCluster(false, nil)
	c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{
		{
			Name:            "tlsMode-istio",
			Match:           &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue("istio")}},
			TransportSocket: &corev3.TransportSocket{Name: wellknown.TransportSocketTLS, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}},
		},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: &corev3.TransportSocket{Name: wellknown.TransportSocketRawBuffer}},
	}
	return c
}

func TestTransportFor(t *testing.T) {
	c := istioCluster(t, echoID)
	mtls := lbEndpointWithMeta("10.101.0.7", &model.EndpointMetadata{TLSMode: model.IstioMutualTLSModeLabel, ClusterID: "cluster1", Network: "network1",
		WorkloadName: "echo", Namespace: "default", Labels: labels.Instance{}})
	plain := lbEndpointWithMeta("10.101.0.8", &model.EndpointMetadata{TLSMode: model.DisabledTLSModeLabel, Labels: labels.Instance{}})

	tr := transportFor(c, mtls)
	if tr.err != nil || tr.name != "tlsMode-istio" || tr.tls.GetSni() != "outbound_.80_._.echo.default.svc.cluster.local" ||
		strings.Join(tr.tls.GetCommonTlsContext().GetAlpnProtocols(), ",") != "istio-peer-exchange,istio" {
		t.Errorf("mTLS endpoint: %+v", tr)
	}
	if tr := transportFor(c, plain); tr.err != nil || tr.name != "tlsMode-disabled" || tr.tls != nil {
		t.Errorf("plaintext endpoint: %+v", tr)
	}
	// Without matches, the cluster's own transport socket (none: plaintext).
	if tr := transportFor(edsCluster(false, nil), mtls); tr.name != "default" || tr.tls != nil || tr.err != nil {
		t.Errorf("no matches: %+v", tr)
	}
	e := describeEndpoint(c, &lbHost{Address: "10.101.0.7", Port: 5678, Weight: 1, Endpoint: mtls})
	if e.TLSMode != "istio" || e.Cluster != "cluster1" || e.TransportSocket != "tlsMode-istio" || e.HealthStatus != "HEALTHY" {
		t.Errorf("describeEndpoint: %+v", e)
	}
}

func lbEndpointWithMeta(ip string, meta *model.EndpointMetadata) *endpointv3.LbEndpoint {
	e := ep(ip, 1, healthy)
	e.Metadata = &corev3.Metadata{}
	util.AppendLbEndpointMetadata(meta, e.Metadata)
	return e
}

func TestSANs(t *testing.T) {
	ca := newTestCA(t, "tailmesh", "cluster1")
	leaf := ca.workload(t, echoID).Leaf
	c := istioCluster(t, "spiffe://cluster.local/ns/default/sa/other", echoID)
	tr := transportFor(c, lbEndpointWithMeta("10.101.0.7", &model.EndpointMetadata{TLSMode: "istio", Labels: labels.Instance{}}))
	untyped, typed := sanMatchers(tr.tls)
	if err := checkSANs(leaf, untyped, typed); err != nil {
		t.Error(err)
	}
	// Only another account allowed: the handshake must fail, naming both sides.
	tr = transportFor(istioCluster(t, "spiffe://cluster.local/ns/default/sa/other"), lbEndpointWithMeta("10.101.0.7", &model.EndpointMetadata{TLSMode: "istio", Labels: labels.Instance{}}))
	untyped, typed = sanMatchers(tr.tls)
	err := checkSANs(leaf, untyped, typed)
	if err == nil || !strings.Contains(err.Error(), "SANs ["+echoID+"] match none of the cluster's subject alt names [spiffe://cluster.local/ns/default/sa/other]") {
		t.Errorf("err = %v", err)
	}
	// Typed matchers look at their SAN type only.
	typedURI := []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI,
		Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: echoID}}}}
	if err := checkSANs(leaf, nil, typedURI); err != nil {
		t.Error(err)
	}
	typedURI[0].SanType = tlsv3.SubjectAltNameMatcher_DNS
	if err := checkSANs(leaf, nil, typedURI); err == nil {
		t.Error("a DNS matcher matched a URI SAN")
	}
	// No matchers: no check.
	if err := checkSANs(leaf, nil, nil); err != nil {
		t.Error(err)
	}
}

func TestMatchString(t *testing.T) {
	for _, tc := range []struct {
		m    *matcherv3.StringMatcher
		s    string
		want bool
	}{
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: echoID}}, echoID, true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: echoID}}, sleepID, false},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "A"}, IgnoreCase: true}, "a", true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://cluster.local/ns/default/"}}, echoID, true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: "/sa/echo"}}, echoID, true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "/ns/other/"}}, echoID, false},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "spiffe://.*/sa/(echo|x)"}}}, echoID, true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/sa/echo"}}}, echoID, false},
	} {
		if got := matchString(tc.m, tc.s); got != tc.want {
			t.Errorf("matchString(%v, %q) = %t", tc.m, tc.s, got)
		}
	}
}

// startTLSInbound runs an inbound presenting serverCert and trusting roots, before Istio's echo.
func startTLSInbound(t *testing.T, serverCert *tls.Certificate, roots *x509.CertPool) (string, *syncBuffer) {
	t.Helper()
	o := &options{appPorts: []int{8080}, clusterID: "cluster1", namespace: "default", labels: map[string]string{}}
	srv, upstreams, err := tryEcho(o, "127.0.0.1", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	logs := &syncBuffer{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := newInbound(inboundConfig{
		Name: l.Addr().String(), Upstream: upstreams[8080],
		Certificate: func() (*tls.Certificate, error) { return serverCert, nil },
		Roots:       func() (*x509.CertPool, error) { return roots, nil },
		Log:         (&logger{w: logs}).Printf,
	})
	go func() { _ = in.Serve(l) }()
	t.Cleanup(func() { _ = l.Close(); _ = in.Close() })
	return l.Addr().String(), logs
}

// clientFor is the client's state for a cluster with one mTLS endpoint at addr.
func clientFor(t *testing.T, addr string, cluster *clusterv3.Cluster, cert *tls.Certificate, roots *x509.CertPool) *clientRun {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	e := lbEndpointWithMeta(host, &model.EndpointMetadata{TLSMode: "istio", Labels: labels.Instance{}})
	e.GetEndpoint().Address = util.BuildAddress(host, uint32(p))
	c := cla(&endpointv3.LocalityLbEndpoints{LbEndpoints: []*endpointv3.LbEndpoint{e}})
	return &clientRun{host: "echo.default.svc.cluster.local", path: "/", port: 80, timeout: 5 * time.Second,
		cluster: cluster, lb: newLoadBalancer(cluster, c), cert: cert, roots: roots, intn: rand.IntN}
}

func TestClientRequest(t *testing.T) {
	mesh := newTestCA(t, "cluster.local", "cluster1")
	client := mesh.workload(t, sleepID)

	addr, _ := startTLSInbound(t, mesh.workload(t, echoID), mesh.pool())
	r := clientFor(t, addr, istioCluster(t, echoID), client, mesh.pool()).request(context.Background())
	if r.Error != "" || r.Code != 200 || !r.TLS || r.Endpoint != addr || r.PeerIdentity != echoID || r.ServerSawClient != sleepID ||
		!strings.HasPrefix(r.ServerSawIssuer, "CN=Intermediate CA,O=cluster.local,L=cluster1; sha256=") || r.Cluster != "cluster1" || r.DurationMs <= 0 {
		t.Errorf("request: %+v", r)
	}

	// The server's chain leads to another root.
	other := newTestCA(t, "other", "cluster9")
	addr, _ = startTLSInbound(t, other.workload(t, echoID), mesh.pool())
	r = clientFor(t, addr, istioCluster(t, echoID), client, mesh.pool()).request(context.Background())
	if want := "tls handshake with " + addr + ": x509: certificate signed by unknown authority"; !strings.HasPrefix(r.Error, want) {
		t.Errorf("root mismatch: error %q, want %q", r.Error, want)
	}

	// The server is not one of the service's accounts.
	addr, _ = startTLSInbound(t, mesh.workload(t, "spiffe://cluster.local/ns/default/sa/impostor"), mesh.pool())
	r = clientFor(t, addr, istioCluster(t, echoID), client, mesh.pool()).request(context.Background())
	if !strings.Contains(r.Error, "match none of the cluster's subject alt names ["+echoID+"]") {
		t.Errorf("SAN mismatch: error %q", r.Error)
	}

	// The server does not trust this client's root: it says so, and logs the root mismatch.
	addr, logs := startTLSInbound(t, mesh.workload(t, echoID), other.pool())
	r = clientFor(t, addr, istioCluster(t, echoID), client, mesh.pool()).request(context.Background())
	if !strings.Contains(r.Error, "bad certificate") {
		t.Errorf("client rejected: error %q", r.Error)
	}
	waitFor(t, "the server's log line", func() bool { return strings.Contains(logs.String(), "root mismatch") })

	// Nothing listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	r = clientFor(t, closed, istioCluster(t, echoID), client, mesh.pool()).request(context.Background())
	if !strings.HasPrefix(r.Error, "connect to "+closed+": ") {
		t.Errorf("closed port: error %q", r.Error)
	}
}
