package main

import (
	"math/rand/v2"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pkg/wellknown"

	"tailmesh.dev/testbed-istio/internal/ads"
)

var istioALPNs = []string{"istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"}

func tcpProxyChain(name string, serverNames, alpn []string, cluster string) *listenerv3.FilterChain {
	tp, _ := anypb.New(&tcpproxyv3.TcpProxy{StatPrefix: cluster, ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: cluster}})
	return &listenerv3.FilterChain{
		Name: name,
		FilterChainMatch: &listenerv3.FilterChainMatch{
			ServerNames:          serverNames,
			ApplicationProtocols: alpn,
		},
		Filters: []*listenerv3.Filter{{Name: wellknown.TCPProxy, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tp}}},
	}
}

// gatewaySnapshot is what istiod sends the east-west gateway for the AUTO_PASSTHROUGH server
// (pilot/pkg/networking/core/gateway.go builtAutoPassthroughFilterChains), plus extra chains to
// exercise the match order.
func gatewaySnapshot() *ads.Snapshot {
	const (
		echo80 = "outbound_.80_._.echo.default.svc.cluster.local"
		echoV1 = "outbound_.80_.v1_.echo.default.svc.cluster.local"
		other  = "outbound_.80_._.other.default.svc.cluster.local"
	)
	weighted, _ := anypb.New(&tcpproxyv3.TcpProxy{ClusterSpecifier: &tcpproxyv3.TcpProxy_WeightedClusters{
		WeightedClusters: &tcpproxyv3.TcpProxy_WeightedCluster{Clusters: []*tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{
			{Name: echo80, Weight: 1}, {Name: echoV1, Weight: 0},
		}},
	}})
	l := &listenerv3.Listener{
		Name:    "0.0.0.0_15443",
		Address: util.BuildAddress("0.0.0.0", 15443),
		FilterChains: []*listenerv3.FilterChain{
			tcpProxyChain("echo", []string{echo80}, istioALPNs, echo80),
			tcpProxyChain("echo-v1", []string{echoV1}, istioALPNs, echoV1),
			tcpProxyChain("other", []string{other}, istioALPNs, other),
			tcpProxyChain("wild", []string{"*.svc.cluster.local"}, nil, "BlackHoleCluster"),
			tcpProxyChain("wild-longer", []string{"*.example.svc.cluster.local"}, nil, echoV1),
			{Name: "http", FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"web.example.com"}},
				Filters: []*listenerv3.Filter{{Name: wellknown.HTTPConnectionManager}}},
			{Name: "weighted", FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"weighted.local"}},
				Filters: []*listenerv3.Filter{{Name: wellknown.TCPProxy, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: weighted}}}},
		},
	}
	eds := func(name string) *clusterv3.Cluster {
		return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: name}}
	}
	return &ads.Snapshot{
		Listeners: map[string]*listenerv3.Listener{l.Name: l},
		Clusters:  map[string]*clusterv3.Cluster{echo80: eds(echo80), echoV1: eds(echoV1)},
		Endpoints: map[string]*endpointv3.ClusterLoadAssignment{
			echo80: {ClusterName: echo80, Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LoadBalancingWeight: wrapperspb.UInt32(1),
				LbEndpoints:         []*endpointv3.LbEndpoint{ep("10.102.0.9", 1, healthy)},
			}}},
			// The subset's pods went unready: istiod sends no endpoints.
			echoV1: {ClusterName: echoV1},
		},
	}
}

func TestRouteSNI(t *testing.T) {
	snap := gatewaySnapshot()
	istio := []string{"istio-peer-exchange", "istio"}
	for name, tc := range map[string]struct {
		port  uint32
		hello clientHello
		chain string
		err   string
	}{
		"exact":              {15443, clientHello{"outbound_.80_._.echo.default.svc.cluster.local", istio}, "echo", ""},
		"case-insensitive":   {15443, clientHello{"OUTBOUND_.80_._.ECHO.default.svc.cluster.local", istio}, "echo", ""},
		"subset":             {15443, clientHello{"outbound_.80_.v1_.echo.default.svc.cluster.local", []string{"istio-h2"}}, "echo-v1", ""},
		"longest wildcard":   {15443, clientHello{"a.example.svc.cluster.local", nil}, "wild-longer", ""},
		"weighted":           {15443, clientHello{"weighted.local", nil}, "weighted", ""},
		"no ALPN match":      {15443, clientHello{"outbound_.80_._.echo.default.svc.cluster.local", []string{"h2"}}, "", "no route for SNI outbound_.80_._.echo.default.svc.cluster.local: no filter chain of listener 0.0.0.0_15443 matches"},
		"unknown SNI":        {15443, clientHello{"outbound_.81_._.nope.example.com", istio}, "", "no route for SNI outbound_.81_._.nope.example.com: no filter chain"},
		"blackhole":          {15443, clientHello{"x.default.svc.cluster.local", nil}, "", `filter chain "wild" of listener 0.0.0.0_15443 sends it to BlackHoleCluster`},
		"cluster not in CDS": {15443, clientHello{"outbound_.80_._.other.default.svc.cluster.local", istio}, "", "istiod sent no cluster outbound_.80_._.other.default.svc.cluster.local"},
		"not tcp":            {15443, clientHello{"web.example.com", nil}, "", `filter chain "http" of listener 0.0.0.0_15443: it has no tcp_proxy filter`},
		"no listener":        {15444, clientHello{"outbound_.80_._.echo.default.svc.cluster.local", istio}, "", "istiod sent no listener on port 15444"},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := routeSNI(snap, tc.port, &tc.hello, rand.IntN)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.chain != tc.chain {
				t.Errorf("chain %q, want %q", r.chain, tc.chain)
			}
		})
	}

	h, _, err := pickEndpoint(snap, "outbound_.80_._.echo.default.svc.cluster.local", rand.IntN)
	if err != nil || h.Address != "10.102.0.9" || h.Port != 5678 {
		t.Errorf("endpoint %+v, err %v", h, err)
	}
	if _, _, err := pickEndpoint(snap, "outbound_.80_.v1_.echo.default.svc.cluster.local", rand.IntN); err == nil ||
		!strings.HasPrefix(err.Error(), "no healthy endpoint for outbound_.80_.v1_.echo.default.svc.cluster.local (") {
		t.Errorf("err = %v", err)
	}
}
