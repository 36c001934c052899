package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	xdsfake "istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/labels"
)

var sidecarArgs = []string{
	"--xds", "127.0.0.1:15010",
	"--ip", "10.101.0.7",
	"--pod", "echo-6d4b9c7f5-x2x9q",
	"--namespace", "default",
	"--workload-name", "echo",
	"--cluster-id", "cluster1",
	"--network", "network1",
	"--mesh-id", "tailmesh",
	"--label", "app=echo",
	"--label", "version=v1",
	"--locality", "region1/region1-a",
	"--istio-version", "1.31-dev",
	"--meta", "REQUESTED_NETWORK_VIEW=network1",
	"--service", "echo.default.svc.cluster.local",
}

func TestFlagsToNode(t *testing.T) {
	o, err := parseFlags(sidecarArgs, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, err := buildNode(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sidecar~10.101.0.7~echo-6d4b9c7f5-x2x9q.default~default.svc.cluster.local"; n.ID != want {
		t.Errorf("node ID = %q, want %q", n.ID, want)
	}
	wantMeta := map[string]any{
		"CLUSTER_ID":             "cluster1",
		"INSTANCE_IPS":           "10.101.0.7",
		"INTERCEPTION_MODE":      "REDIRECT",
		"ISTIO_VERSION":          "1.31-dev",
		"LABELS":                 map[string]any{"app": "echo", "version": "v1"},
		"MESH_ID":                "tailmesh",
		"NAME":                   "echo-6d4b9c7f5-x2x9q",
		"NAMESPACE":              "default",
		"NETWORK":                "network1",
		"REQUESTED_NETWORK_VIEW": "network1",
		"WORKLOAD_NAME":          "echo",
	}
	if got := n.Metadata.AsMap(); !reflect.DeepEqual(got, wantMeta) {
		t.Errorf("metadata =\n%v\nwant\n%v", got, wantMeta)
	}
	if got := toLocality(n.Locality); got != (localityJSON{Region: "region1", Zone: "region1-a"}) {
		t.Errorf("locality = %+v", got)
	}

	// istiod must read the identity back as meant: parse it with istiod's own code
	// (pilot/pkg/xds/ads.go initProxyMetadata does the same).
	meta, err := model.ParseMetadata(n.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := model.ParseServiceNodeWithMetadata(n.ID, meta)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.Type != model.SidecarProxy || proxy.ID != "echo-6d4b9c7f5-x2x9q.default" ||
		proxy.DNSDomain != "default.svc.cluster.local" || !reflect.DeepEqual(proxy.IPAddresses, []string{"10.101.0.7"}) {
		t.Errorf("istiod parses proxy as type=%s id=%s domain=%s ips=%v", proxy.Type, proxy.ID, proxy.DNSDomain, proxy.IPAddresses)
	}
	if meta.ClusterID != "cluster1" || meta.Network != "network1" || meta.Namespace != "default" ||
		meta.Labels["app"] != "echo" || !reflect.DeepEqual([]string(meta.RequestedNetworkView), []string{"network1"}) {
		t.Errorf("istiod parses metadata as %+v", meta)
	}
	if v := proxy.IstioVersion; v.Major != 1 || v.Minor != 31 {
		t.Errorf("istiod parses ISTIO_VERSION as %v", v)
	}
}

func TestRouterNode(t *testing.T) {
	o, err := parseFlags([]string{
		"--xds", "istiod:15010", "--type", "router", "--ip", "10.102.0.3",
		"--pod", "istio-eastwestgateway-7f9-abcde", "--namespace", "istio-system", "--label", "istio=eastwestgateway",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, err := buildNode(o)
	if err != nil {
		t.Fatal(err)
	}
	if want := "router~10.102.0.3~istio-eastwestgateway-7f9-abcde.istio-system~istio-system.svc.cluster.local"; n.ID != want {
		t.Errorf("node ID = %q, want %q", n.ID, want)
	}
	m := n.Metadata.AsMap()
	if m["WORKLOAD_NAME"] != "istio-eastwestgateway-7f9-abcde" || m["CLUSTER_ID"] != "Kubernetes" ||
		m["MESH_ID"] != "cluster.local" || m["NETWORK"] != nil || m["LABELS"].(map[string]any)["istio"] != "eastwestgateway" || n.Locality != nil {
		t.Errorf("defaults: metadata %v locality %v", m, n.Locality)
	}
}

func TestFlagErrors(t *testing.T) {
	base := []string{"--xds", "x:1", "--ip", "10.0.0.1", "--pod", "p"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"missing":      {[]string{"--pod", "p"}, "missing required flags: --ip, --xds"},
		"bad type":     {append(base, "--type", "waypoint"), "--type must be sidecar or router"},
		"bad ip":       {[]string{"--xds", "x:1", "--ip", "pod-ip", "--pod", "p"}, "--ip:"},
		"bad xds":      {[]string{"--xds", "istiod", "--ip", "10.0.0.1", "--pod", "p"}, "--xds:"},
		"bad label":    {append(base, "--label", "novalue"), "want key=value"},
		"bad locality": {append(base, "--locality", "a/b/c/d"), "--locality must be"},
		"bad timeout":  {append(base, "--timeout", "0s"), "--timeout must be positive"},
		"extra args":   {append(base, "stray"), "unexpected arguments"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	var usage bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v", err)
	}
	for _, f := range []string{"-xds", "-type", "-ip", "-pod", "-namespace", "-cluster-id", "-network", "-label", "-locality", "-istio-version", "-timeout", "-service", "-meta", "-mesh-id"} {
		if !strings.Contains(usage.String(), "  "+f+" ") {
			t.Errorf("usage lacks %s:\n%s", f, usage.String())
		}
	}
}

// lbEndpoint builds an LB endpoint with the metadata istiod writes
// (pilot/pkg/networking/util/util.go AppendLbEndpointMetadata, called by
// pilot/pkg/xds/endpoints/endpoint_builder.go buildEnvoyLbEndpoint).
func lbEndpoint(ip string, port, weight uint32, meta *model.EndpointMetadata) *endpointv3.LbEndpoint {
	ep := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: util.BuildAddress(ip, port),
		}},
		HealthStatus:        corev3.HealthStatus_HEALTHY,
		LoadBalancingWeight: wrapperspb.UInt32(weight),
		Metadata:            &corev3.Metadata{},
	}
	util.AppendLbEndpointMetadata(meta, ep.Metadata)
	return ep
}

func TestRender(t *testing.T) {
	o, err := parseFlags(append([]string{"--type", "router"}, sidecarArgs...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	n, err := buildNode(o)
	if err != nil {
		t.Fatal(err)
	}
	eds := func(name string) *clusterv3.Cluster {
		return &clusterv3.Cluster{
			Name:                 name,
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
			EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{ServiceName: name},
		}
	}
	const (
		echo    = "outbound|80||echo.default.svc.cluster.local"
		echoSNI = "outbound_.80_._.echo.default.svc.cluster.local"
		other   = "outbound|80||other.default.svc.cluster.local"
	)
	snap := &snapshot{
		clusters: map[string]*clusterv3.Cluster{
			echo: eds(echo), echoSNI: eds(echoSNI), other: eds(other),
			"BlackHoleCluster": {Name: "BlackHoleCluster", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}},
		},
		endpoints: map[string]*endpointv3.ClusterLoadAssignment{
			echo: {ClusterName: echo, Endpoints: []*endpointv3.LocalityLbEndpoints{
				{
					Locality:            &corev3.Locality{Region: "region2", Zone: "region2-a"},
					LoadBalancingWeight: wrapperspb.UInt32(2),
					LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("172.18.0.20", 15443, 2, &model.EndpointMetadata{
						Network: "network2", TLSMode: model.IstioMutualTLSModeLabel, ClusterID: "cluster2", Labels: labels.Instance{},
					})},
				},
				{
					Locality:            &corev3.Locality{Region: "region1", Zone: "region1-a"},
					LoadBalancingWeight: wrapperspb.UInt32(1),
					LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("10.101.0.7", 5678, 1, &model.EndpointMetadata{
						Network: "network1", TLSMode: model.IstioMutualTLSModeLabel, ClusterID: "cluster1",
						WorkloadName: "echo", Namespace: "default", Labels: labels.Instance{"app": "echo"},
					})},
				},
			}},
			echoSNI: {ClusterName: echoSNI},
		},
		listeners: map[string]*listenerv3.Listener{
			"0.0.0.0_15443": {
				Name:    "0.0.0.0_15443",
				Address: util.BuildAddress("0.0.0.0", 15443),
				FilterChains: []*listenerv3.FilterChain{{
					FilterChainMatch: &listenerv3.FilterChainMatch{
						ServerNames:       []string{"outbound_.80_._.echo.default.svc.cluster.local", "outbound_.443_._.echo.default.svc.cluster.local"},
						TransportProtocol: "tls",
					},
					Filters: []*listenerv3.Filter{{Name: "envoy.filters.network.tcp_proxy"}},
				}},
			},
		},
	}
	out, warnings := render(n, snap, []string{"echo.default.svc.cluster.local", "missing.default.svc.cluster.local"})
	if want := []string{"istiod sent no EDS cluster for service missing.default.svc.cluster.local"}; !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %v", warnings)
	}
	out.Node.Metadata = map[string]any{"elided": true}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	const want = `{
  "node": {
    "id": "router~10.101.0.7~echo-6d4b9c7f5-x2x9q.default~default.svc.cluster.local",
    "type": "router",
    "locality": {
      "region": "region1",
      "zone": "region1-a",
      "subzone": ""
    },
    "metadata": {
      "elided": true
    }
  },
  "cdsClusters": [
    "BlackHoleCluster",
    "outbound_.80_._.echo.default.svc.cluster.local",
    "outbound|80||echo.default.svc.cluster.local",
    "outbound|80||other.default.svc.cluster.local"
  ],
  "edsClusters": [
    {
      "cluster": "outbound_.80_._.echo.default.svc.cluster.local",
      "service": "echo.default.svc.cluster.local",
      "port": 80,
      "subset": "",
      "endpoints": []
    },
    {
      "cluster": "outbound|80||echo.default.svc.cluster.local",
      "service": "echo.default.svc.cluster.local",
      "port": 80,
      "subset": "",
      "endpoints": [
        {
          "address": "10.101.0.7",
          "port": 5678,
          "weight": 1,
          "localityWeight": 1,
          "locality": {
            "region": "region1",
            "zone": "region1-a",
            "subzone": ""
          },
          "priority": 0,
          "healthStatus": "HEALTHY",
          "network": null,
          "cluster": "cluster1",
          "tlsMode": "istio"
        },
        {
          "address": "172.18.0.20",
          "port": 15443,
          "weight": 2,
          "localityWeight": 2,
          "locality": {
            "region": "region2",
            "zone": "region2-a",
            "subzone": ""
          },
          "priority": 0,
          "healthStatus": "HEALTHY",
          "network": null,
          "cluster": "cluster2",
          "tlsMode": "istio"
        }
      ]
    }
  ],
  "listeners": [
    {
      "name": "0.0.0.0_15443",
      "address": "0.0.0.0",
      "port": 15443,
      "filterChains": [
        {
          "name": "",
          "serverNames": [
            "outbound_.443_._.echo.default.svc.cluster.local",
            "outbound_.80_._.echo.default.svc.cluster.local"
          ],
          "transportProtocol": "tls",
          "filters": [
            "envoy.filters.network.tcp_proxy"
          ]
        }
      ]
    }
  ]
}`
	if string(got) != want {
		t.Errorf("render =\n%s\nwant\n%s", got, want)
	}

	// A sidecar's output has no listeners key.
	n.Type = model.SidecarProxy
	out, _ = render(n, snap, nil)
	if out.Listeners != nil || len(out.EDSClusters) != 3 {
		t.Errorf("sidecar render: listeners %v, %d EDS clusters", out.Listeners, len(out.EDSClusters))
	}
}

// The config a two-network test bed gives istiod: a service with one endpoint on each network,
// network2 reachable through its east-west gateway, and the AUTO_PASSTHROUGH Gateway that
// istio's multicluster samples put on east-west gateways.
const meshConfig = `
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
  - address: 10.101.0.7
    network: network1
    locality: region1/region1-a
    labels: {app: echo, security.istio.io/tlsMode: istio}
  - address: 10.102.0.9
    network: network2
    locality: region2/region2-b
    labels: {app: echo, security.istio.io/tlsMode: istio}
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

// TestProbeAgainstIstiod runs the probe against istiod's real xDS server (in process, the
// fake from pilot/test/xds with a real TCP listener), offline.
func TestProbeAgainstIstiod(t *testing.T) {
	// As xds-probe's run would, but before the server's goroutines start logging.
	configureLogging(testing.Verbose())
	s := xdsfake.NewFakeDiscoveryServer(t, xdsfake.FakeOptions{
		ConfigString: meshConfig,
		Gateways: []model.NetworkGateway{{
			Network: "network2", Cluster: "cluster2", Addr: "172.18.0.20", Port: 15443,
		}},
		ListenerBuilder: func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
	})
	addr := s.Listener.Addr().String()

	t.Run("sidecar", func(t *testing.T) {
		out := runOK(t, "--xds", addr, "--ip", "10.101.0.50", "--pod", "sleep-1", "--namespace", "default",
			"--network", "network1", "--locality", "region1/region1-a", "--service", "echo.default.svc.cluster.local")
		if len(out.EDSClusters) != 1 || out.EDSClusters[0].Cluster != "outbound|80||echo.default.svc.cluster.local" {
			t.Fatalf("EDS clusters = %+v", out.EDSClusters)
		}
		eps := out.EDSClusters[0].Endpoints
		got := []string{}
		for _, ep := range eps {
			got = append(got, ep.Address+":"+itoa(ep.Port)+" "+ep.Locality.Zone+" "+deref(ep.TLSMode)+" "+deref(ep.Cluster))
		}
		// network2's endpoint is reached through network2's gateway (split-horizon EDS).
		want := []string{
			"10.101.0.7:5678 region1-a istio Kubernetes",
			"172.18.0.20:15443 region2-b istio cluster2",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("endpoints = %q, want %q", got, want)
		}
		if out.Listeners != nil {
			t.Errorf("sidecar output has listeners")
		}
		if !contains(out.CDSClusters, "outbound|80||echo.default.svc.cluster.local") || !contains(out.CDSClusters, "BlackHoleCluster") {
			t.Errorf("CDS clusters = %v", out.CDSClusters)
		}
	})

	t.Run("router", func(t *testing.T) {
		out := runOK(t, "--xds", addr, "--type", "router", "--ip", "10.101.0.60", "--pod", "istio-eastwestgateway-1",
			"--namespace", "istio-system", "--label", "istio=eastwestgateway", "--network", "network1",
			"--service", "echo.default.svc.cluster.local")
		if out.Listeners == nil {
			t.Fatal("router output has no listeners")
		}
		var sni []string
		for _, l := range *out.Listeners {
			if l.Port == 15443 {
				for _, fc := range l.FilterChains {
					sni = append(sni, fc.ServerNames...)
				}
			}
		}
		if !contains(sni, "outbound_.80_._.echo.default.svc.cluster.local") {
			t.Errorf("15443 SNI names = %v", sni)
		}
		clusters := []string{}
		for _, c := range out.EDSClusters {
			clusters = append(clusters, c.Cluster)
		}
		if !contains(clusters, "outbound_.80_._.echo.default.svc.cluster.local") {
			t.Errorf("router EDS clusters = %v", clusters)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		code, _, stderr := runProbe("--xds", closed, "--ip", "10.101.0.50", "--pod", "p", "--timeout", "10s")
		if code != 1 || !strings.Contains(stderr, "cannot reach istiod at "+closed) {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})

	t.Run("silent", func(t *testing.T) {
		// Accepts connections and never speaks: the probe must give up after --timeout.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		start := time.Now()
		code, _, stderr := runProbe("--xds", l.Addr().String(), "--ip", "10.101.0.50", "--pod", "p", "--timeout", "1s")
		if code != 1 || !strings.Contains(stderr, "did not answer within 1s") || time.Since(start) > 10*time.Second {
			t.Errorf("exit %d after %v, stderr %q", code, time.Since(start), stderr)
		}
	})
}

func runProbe(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func runOK(t *testing.T, args ...string) *output {
	t.Helper()
	code, stdout, stderr := runProbe(args...)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	t.Logf("xds-probe %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout, stderr)
	out := &output{}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("stdout is not the probe's JSON (%v):\n%s", err, stdout)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func itoa(n uint32) string {
	b, _ := json.Marshal(n)
	return string(b)
}
