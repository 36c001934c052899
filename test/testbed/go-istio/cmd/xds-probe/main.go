// Command xds-probe asks a real istiod over ADS for exactly what a proxy with a given identity
// would get (clusters, endpoints and, for gateways, listener SNI names) and prints it as JSON, so
// the TypeScript integration tests can compare istiod's view with what Tailmesh reports.
//
// It speaks delta xDS through Istio's own client (pkg/adsc/delta.go), the protocol pilot-agent
// uses by default (ISTIO_DELTA_XDS, pilot/pkg/features/experimental.go), and builds the node
// identity the way pilot-agent and the injection templates do, so istiod computes the same
// config it would push to a real sidecar or gateway with that identity.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	pm "istio.io/istio/pkg/model"

	"tailmesh.dev/testbed-istio/internal/ads"
	"tailmesh.dev/testbed-istio/internal/cli"
	"tailmesh.dev/testbed-istio/internal/xdsnode"
)

const usageText = `xds-probe asks istiod over ADS (delta xDS, like pilot-agent) for exactly what a proxy with
the given identity would get, and prints it as JSON on stdout: the node identity it used, the
CDS cluster names, every EDS cluster of the requested services with its endpoints and, for
--type router, the listeners' filter chains with their SNI server names.

Usage:
  xds-probe --xds <host:port> --ip <pod IP> --pod <name> [flags]

Exit status: 0 on success, 1 when istiod cannot be reached or does not answer in time,
2 on bad flags. Flags take one or two dashes.

Flags:
`

// options are the parsed command line flags.
type options struct {
	xds          string
	proxyType    string
	ip           string
	pod          string
	namespace    string
	clusterID    string
	network      string
	meshID       string
	workloadName string
	labels       map[string]string
	meta         map[string]string
	locality     string
	istioVersion string
	timeout      time.Duration
	services     []string
	verbose      bool
}

// defaultIstioVersion is the version pilot-agent would report (xdsnode.DefaultIstioVersion).
func defaultIstioVersion() string { return xdsnode.DefaultIstioVersion() }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{labels: map[string]string{}, meta: map[string]string{}}
	fs := flag.NewFlagSet("xds-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.xds, "xds", "", "istiod's plaintext xDS address `host:port`, istiod's port 15010 (required)")
	fs.StringVar(&o.proxyType, "type", "sidecar", "proxy `type`: sidecar, or router for a gateway proxy (e.g. the east-west gateway)")
	fs.StringVar(&o.ip, "ip", "", "the proxy's pod `IP`; istiod finds the proxy's workload by it (required)")
	fs.StringVar(&o.pod, "pod", "", "the proxy's pod `name` (required)")
	fs.StringVar(&o.namespace, "namespace", "default", "the proxy's `namespace`")
	fs.StringVar(&o.clusterID, "cluster-id", "Kubernetes", "the proxy's Istio cluster `name` (CLUSTER_ID; the injector's default)")
	fs.StringVar(&o.network, "network", "", "the proxy's Istio `network` (NETWORK)")
	fs.StringVar(&o.meshID, "mesh-id", "cluster.local", "the mesh `id` (MESH_ID; the injector falls back to the trust domain)")
	fs.StringVar(&o.workloadName, "workload-name", "", "WORKLOAD_NAME, the owning Deployment's `name` as the injector sets it (default: --pod)")
	fs.Var(cli.KVFlag(o.labels), "label", "a pod `key=value` label, repeatable (LABELS); e.g. istio=eastwestgateway so a router matches a Gateway's selector")
	fs.Var(cli.KVFlag(o.meta), "meta", "extra node metadata `KEY=value`, repeatable, as an ISTIO_META_KEY env var would set it (e.g. REQUESTED_NETWORK_VIEW=network1); overrides the fields above")
	fs.StringVar(&o.locality, "locality", "", "the proxy's locality `region/zone[/subzone]`")
	fs.StringVar(&o.istioVersion, "istio-version", defaultIstioVersion(), "the `version` the proxy reports (ISTIO_VERSION); defaults to the pinned istio module's version stamped into this binary")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "how long to wait for istiod's complete answer")
	fs.Var((*cli.ListFlag)(&o.services), "service", "a service `hostname` whose EDS clusters to report, repeatable (e.g. echo.default.svc.cluster.local); default: all")
	fs.BoolVar(&o.verbose, "verbose", false, "log Istio's xDS client at info level on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var missing []string
	for name, v := range map[string]string{"--xds": o.xds, "--ip": o.ip, "--pod": o.pod, "--namespace": o.namespace} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("missing required flags: %s", strings.Join(missing, ", "))
	}
	if o.proxyType != string(pm.SidecarProxy) && o.proxyType != string(pm.Router) {
		return nil, fmt.Errorf("--type must be sidecar or router, got %q", o.proxyType)
	}
	if _, _, err := net.SplitHostPort(o.xds); err != nil {
		return nil, fmt.Errorf("--xds: %v", err)
	}
	if _, err := netip.ParseAddr(o.ip); err != nil {
		return nil, fmt.Errorf("--ip: %v", err)
	}
	if o.locality != "" && strings.Count(o.locality, "/") > 2 {
		return nil, fmt.Errorf("--locality must be region/zone[/subzone], got %q", o.locality)
	}
	if o.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	if o.workloadName == "" {
		o.workloadName = o.pod
	}
	return o, nil
}

// node is the identity the probe presents to istiod.
type node = xdsnode.Node

// buildNode builds the node the way pilot-agent does for a pod (internal/xdsnode Build).
func buildNode(o *options) (*node, error) {
	return xdsnode.Build(xdsnode.Options{
		Type:         o.proxyType,
		IP:           o.ip,
		Pod:          o.pod,
		Namespace:    o.namespace,
		ClusterID:    o.clusterID,
		Network:      o.network,
		MeshID:       o.meshID,
		WorkloadName: o.workloadName,
		Labels:       o.labels,
		Meta:         o.meta,
		Locality:     o.locality,
		IstioVersion: o.istioVersion,
	})
}

// snapshot is what istiod sent: every CDS cluster and listener, and the endpoints of the EDS
// clusters the probe subscribed to, keyed by name (a copy of the session's ads.Snapshot).
type snapshot struct {
	clusters  map[string]*clusterv3.Cluster
	listeners map[string]*listenerv3.Listener
	endpoints map[string]*endpointv3.ClusterLoadAssignment
}

// serviceSet holds the --service hostnames; nil means all services.
type serviceSet map[string]bool

func newServiceSet(services []string) serviceSet {
	if len(services) == 0 {
		return nil
	}
	s := serviceSet{}
	for _, h := range services {
		s[h] = true
	}
	return s
}

// wants reports whether an EDS cluster belongs to a requested service. Cluster names are
// "outbound|80|subset|host" or, for a gateway's SNI-DNAT clusters, "outbound_.80_.subset_.host"
// (pilot/pkg/model/service.go BuildSubsetKey, BuildDNSSrvSubsetKey); ParseSubsetKey reads both.
func (s serviceSet) wants(clusterName string) bool {
	if s == nil {
		return true
	}
	_, _, hostname, _ := model.ParseSubsetKey(clusterName)
	return s[string(hostname)]
}

// edsName is the name a cluster's endpoints are requested and answered by.
func edsName(cl *clusterv3.Cluster) string { return ads.EDSName(cl) }

// probe connects to istiod as the given node and returns its answer: CDS and LDS handled, and
// an EDS answer for every cluster of the requested services (internal/ads Session).
func probe(ctx context.Context, o *options, n *node) (*snapshot, error) {
	services := newServiceSet(o.services)
	s := ads.Start(ctx, ads.Config{
		Address:        o.xds,
		ClientName:     "xds-probe",
		Node:           n,
		Namespace:      o.namespace,
		Pod:            o.pod,
		IP:             o.ip,
		WatchListeners: true,
		WantEDS:        services.wants,
	})
	defer s.Close()
	if err := s.Wait(ctx, o.timeout, nil); err != nil {
		return nil, err
	}
	snap := &snapshot{}
	s.View(func(v *ads.Snapshot) {
		snap.clusters = maps.Clone(v.Clusters)
		snap.listeners = maps.Clone(v.Listeners)
		snap.endpoints = maps.Clone(v.Endpoints)
	})
	return snap, nil
}

// Output, printed as JSON. Field order is the JSON key order; lists are sorted.
type output struct {
	Node        nodeJSON         `json:"node"`
	CDSClusters []string         `json:"cdsClusters"`
	EDSClusters []edsClusterJSON `json:"edsClusters"`
	Listeners   *[]listenerJSON  `json:"listeners,omitempty"`
}

type nodeJSON struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Locality localityJSON   `json:"locality"`
	Metadata map[string]any `json:"metadata"`
}

type localityJSON struct {
	Region  string `json:"region"`
	Zone    string `json:"zone"`
	Subzone string `json:"subzone"`
}

type edsClusterJSON struct {
	Cluster   string         `json:"cluster"`
	Service   string         `json:"service"`
	Port      int            `json:"port"`
	Subset    string         `json:"subset"`
	Endpoints []endpointJSON `json:"endpoints"`
}

type endpointJSON struct {
	Address string `json:"address"`
	Port    uint32 `json:"port"`
	// Weight is the LB endpoint's load_balancing_weight, LocalityWeight its locality's; null
	// when istiod leaves them unset.
	Weight         *uint32      `json:"weight"`
	LocalityWeight *uint32      `json:"localityWeight"`
	Locality       localityJSON `json:"locality"`
	Priority       uint32       `json:"priority"`
	HealthStatus   string       `json:"healthStatus"`
	// Network, Cluster and TLSMode are read from the endpoint's filter metadata where istiod
	// writes it (pilot/pkg/networking/util/util.go AppendLbEndpointMetadata): tlsMode under
	// "envoy.transport_socket_match", the cluster ID as the last field of "istio"/"workload"
	// ("workload;namespace;canonical name;revision;cluster"). istiod does not put the endpoint's
	// network into EDS, so Network is null unless a future istiod adds "istio"/"network"; a
	// cross-network endpoint shows up as its network's gateway address instead
	// (pilot/pkg/xds/endpoints/ep_filters.go).
	Network *string `json:"network"`
	Cluster *string `json:"cluster"`
	TLSMode *string `json:"tlsMode"`
}

type listenerJSON struct {
	Name         string            `json:"name"`
	Address      string            `json:"address"`
	Port         uint32            `json:"port"`
	FilterChains []filterChainJSON `json:"filterChains"`
}

type filterChainJSON struct {
	Name              string   `json:"name"`
	ServerNames       []string `json:"serverNames"`
	TransportProtocol string   `json:"transportProtocol"`
	Filters           []string `json:"filters"`
}

func render(n *node, s *snapshot, services []string) (*output, []string) {
	out := &output{
		Node: nodeJSON{
			ID:       n.ID,
			Type:     string(n.Type),
			Locality: toLocality(n.Locality),
			Metadata: n.Metadata.AsMap(),
		},
		CDSClusters: sortedKeys(s.clusters),
		EDSClusters: []edsClusterJSON{},
	}
	filter := newServiceSet(services)
	seen := map[string]bool{}
	for _, name := range out.CDSClusters {
		cl := s.clusters[name]
		if cl.GetType() != clusterv3.Cluster_EDS || !filter.wants(name) {
			continue
		}
		_, subset, hostname, port := model.ParseSubsetKey(name)
		seen[string(hostname)] = true
		out.EDSClusters = append(out.EDSClusters, edsClusterJSON{
			Cluster:   name,
			Service:   string(hostname),
			Port:      port,
			Subset:    subset,
			Endpoints: toEndpoints(s.endpoints[edsName(cl)]),
		})
	}
	var warnings []string
	for _, svc := range services {
		if !seen[svc] {
			warnings = append(warnings, fmt.Sprintf("istiod sent no EDS cluster for service %s", svc))
		}
	}
	if n.Type == pm.Router {
		ls := []listenerJSON{}
		for _, name := range sortedKeys(s.listeners) {
			ls = append(ls, toListener(s.listeners[name]))
		}
		out.Listeners = &ls
	}
	return out, warnings
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func toLocality(l *corev3.Locality) localityJSON {
	return localityJSON{Region: l.GetRegion(), Zone: l.GetZone(), Subzone: l.GetSubZone()}
}

func toEndpoints(cla *endpointv3.ClusterLoadAssignment) []endpointJSON {
	eps := []endpointJSON{}
	for _, lle := range cla.GetEndpoints() {
		for _, lb := range lle.GetLbEndpoints() {
			address, port := toAddress(lb.GetEndpoint().GetAddress())
			ep := endpointJSON{
				Address:      address,
				Port:         port,
				Locality:     toLocality(lle.GetLocality()),
				Priority:     lle.GetPriority(),
				HealthStatus: lb.GetHealthStatus().String(),
			}
			if w := lb.GetLoadBalancingWeight(); w != nil {
				ep.Weight = &w.Value
			}
			if w := lle.GetLoadBalancingWeight(); w != nil {
				ep.LocalityWeight = &w.Value
			}
			md := lb.GetMetadata().GetFilterMetadata()
			ep.TLSMode = stringField(md[util.EnvoyTransportSocketMetadataKey], model.TLSModeLabelShortname)
			ep.Network = stringField(md[util.IstioMetadataKey], "network")
			if w := stringField(md[util.IstioMetadataKey], "workload"); w != nil {
				if parts := strings.Split(*w, ";"); len(parts) == 5 {
					ep.Cluster = &parts[4]
				}
			}
			eps = append(eps, ep)
		}
	}
	sort.SliceStable(eps, func(i, j int) bool {
		a, b := eps[i], eps[j]
		if a.Priority != b.Priority {
			return a.Priority < b.Priority
		}
		if a.Locality != b.Locality {
			return a.Locality.Region+"/"+a.Locality.Zone+"/"+a.Locality.Subzone <
				b.Locality.Region+"/"+b.Locality.Zone+"/"+b.Locality.Subzone
		}
		if a.Address != b.Address {
			return a.Address < b.Address
		}
		return a.Port < b.Port
	})
	return eps
}

func stringField(s *structpb.Struct, key string) *string {
	v, ok := s.GetFields()[key]
	if !ok {
		return nil
	}
	if _, isString := v.GetKind().(*structpb.Value_StringValue); !isString {
		return nil
	}
	str := v.GetStringValue()
	return &str
}

// toAddress renders an endpoint or listener address (internal/ads ToAddress).
func toAddress(a *corev3.Address) (string, uint32) { return ads.ToAddress(a) }

func toListener(l *listenerv3.Listener) listenerJSON {
	address, port := toAddress(l.GetAddress())
	out := listenerJSON{Name: l.GetName(), Address: address, Port: port, FilterChains: []filterChainJSON{}}
	for _, fc := range l.GetFilterChains() {
		names := append([]string{}, fc.GetFilterChainMatch().GetServerNames()...)
		sort.Strings(names)
		filters := []string{}
		for _, f := range fc.GetFilters() {
			filters = append(filters, f.GetName())
		}
		out.FilterChains = append(out.FilterChains, filterChainJSON{
			Name:              fc.GetName(),
			ServerNames:       names,
			TransportProtocol: fc.GetFilterChainMatch().GetTransportProtocol(),
			Filters:           filters,
		})
	}
	return out
}

// configureLogging sends Istio's logs to stderr, quiet unless verbose (internal/cli).
func configureLogging(verbose bool) { cli.ConfigureLogging(verbose) }

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "xds-probe: %v\n", err)
		return 2
	}
	configureLogging(o.verbose)
	n, err := buildNode(o)
	if err != nil {
		fmt.Fprintf(stderr, "xds-probe: building node metadata: %v\n", err)
		return 1
	}
	snap, err := probe(context.Background(), o, n)
	if err != nil {
		fmt.Fprintf(stderr, "xds-probe: %v\n", err)
		return 1
	}
	out, warnings := render(n, snap, o.services)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "xds-probe: warning: %s\n", w)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "xds-probe: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
