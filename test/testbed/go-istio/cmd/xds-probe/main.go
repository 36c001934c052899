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
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/adsc"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/constants"
	"istio.io/istio/pkg/log"
	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/network"
	"istio.io/istio/pkg/version"
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

// kvFlag is a repeatable k=v flag.
type kvFlag map[string]string

func (f kvFlag) String() string { return "" }

func (f kvFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	f[k] = v
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (f *listFlag) String() string { return "" }

func (f *listFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*f = append(*f, s)
	return nil
}

// defaultIstioVersion is what pilot-agent would report: the version stamped into the binary
// (pkg/bootstrap/config.go SetIstioVersion uses version.Info.Version). build-binaries.sh stamps
// xds-probe with the same istio.io/istio/pkg/version values as pilot-discovery. An unstamped
// build (go run, go test) reports "unknown", which we do not send: adsc then sends its own
// "65536.65536.65536" (pkg/adsc/adsc.go buildNode), which istiod treats as the newest proxy.
func defaultIstioVersion() string {
	if v := version.Info.Version; v != "" && v != "unknown" {
		return v
	}
	return ""
}

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
	fs.Var(kvFlag(o.labels), "label", "a pod `key=value` label, repeatable (LABELS); e.g. istio=eastwestgateway so a router matches a Gateway's selector")
	fs.Var(kvFlag(o.meta), "meta", "extra node metadata `KEY=value`, repeatable, as an ISTIO_META_KEY env var would set it (e.g. REQUESTED_NETWORK_VIEW=network1); overrides the fields above")
	fs.StringVar(&o.locality, "locality", "", "the proxy's locality `region/zone[/subzone]`")
	fs.StringVar(&o.istioVersion, "istio-version", defaultIstioVersion(), "the `version` the proxy reports (ISTIO_VERSION); defaults to the pinned istio module's version stamped into this binary")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Second, "how long to wait for istiod's complete answer")
	fs.Var((*listFlag)(&o.services), "service", "a service `hostname` whose EDS clusters to report, repeatable (e.g. echo.default.svc.cluster.local); default: all")
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
type node struct {
	ID       string
	Type     pm.NodeType
	Locality *corev3.Locality
	Metadata *structpb.Struct
}

// buildNode builds the node the way pilot-agent does for a pod:
//   - ID: "<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local", from Proxy.ServiceNode in
//     pkg/istio-agent/agent.go with ID = podName.podNamespace and the default DNS domain from
//     pilot/cmd/pilot-agent/app/cmd.go (initProxy, getDNSDomain); adsc's nodeID builds the same.
//     istiod parses it back in pilot/pkg/model/context.go ParseServiceNodeWithMetadata.
//   - Metadata: the JSON names of pkg/model/proxy.go BootstrapNodeMetadata/NodeMetadata, filled from
//     what the injection templates (manifests/charts/istio-control/istio-discovery/files/
//     injection-template.yaml and gateway-injection-template.yaml) put in ISTIO_META_* and
//     POD_* env vars, which pkg/bootstrap/config.go GetNodeMetaData turns into metadata:
//     CLUSTER_ID, NETWORK, WORKLOAD_NAME, MESH_ID, INTERCEPTION_MODE from ISTIO_META_*; NAME and
//     NAMESPACE from POD_NAME/POD_NAMESPACE; INSTANCE_IPS from INSTANCE_IP; LABELS from the
//     downward-API pod labels file; ISTIO_VERSION from the binary's version.
//   - Locality: region/zone/subzone as pkg/model/proxy.go ConvertLocality splits it.
func buildNode(o *options) (*node, error) {
	meta := pm.BootstrapNodeMetadata{
		NodeMetadata: pm.NodeMetadata{
			IstioVersion:     o.istioVersion,
			InstanceIPs:      pm.StringList{o.ip},
			Namespace:        o.namespace,
			WorkloadName:     o.workloadName,
			InterceptionMode: model.InterceptionRedirect,
			MeshID:           o.meshID,
			ClusterID:        cluster.ID(o.clusterID),
			Network:          network.ID(o.network),
		},
		InstanceName: o.pod,
	}
	if len(o.labels) > 0 {
		meta.Labels = o.labels
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	for k, v := range o.meta {
		fields[k] = v
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, err
	}
	n := &node{
		Type:     pm.NodeType(o.proxyType),
		Metadata: st,
	}
	n.ID = strings.Join([]string{
		o.proxyType, o.ip, o.pod + "." + o.namespace, o.namespace + ".svc." + constants.DefaultClusterLocalDomain,
	}, "~")
	if o.locality != "" {
		n.Locality = pm.ConvertLocality(o.locality)
	}
	return n, nil
}

// snapshot is what istiod sent: every CDS cluster and listener, and the endpoints of the EDS
// clusters the probe subscribed to, keyed by name.
type snapshot struct {
	clusters  map[string]*clusterv3.Cluster
	listeners map[string]*listenerv3.Listener
	endpoints map[string]*endpointv3.ClusterLoadAssignment
}

// collector gathers istiod's answer from the delta client's handlers and decides when it is
// complete: CDS and LDS handled, and an EDS answer for every cluster subscribed to.
type collector struct {
	mu       sync.Mutex
	services serviceSet
	snap     snapshot
	wantEDS  map[string]bool
	handled  map[string]bool
	current  string
	answered bool
	err      error
	changed  chan struct{}
}

func newCollector(services []string) *collector {
	c := &collector{
		snap: snapshot{
			clusters:  map[string]*clusterv3.Cluster{},
			listeners: map[string]*listenerv3.Listener{},
			endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
		},
		wantEDS:  map[string]bool{},
		handled:  map[string]bool{},
		changed:  make(chan struct{}, 1),
		services: newServiceSet(services),
	}
	return c
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

func (c *collector) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
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
func edsName(cl *clusterv3.Cluster) string {
	if n := cl.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return cl.GetName()
}

func (c *collector) onCluster(ctx adsc.HandlerContext, name, _ string, cl *clusterv3.Cluster, ev adsc.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev == adsc.EventDelete {
		delete(c.snap.clusters, name)
		return
	}
	c.snap.clusters[name] = cl
	if cl.GetType() == clusterv3.Cluster_EDS && c.services.wants(name) {
		// The delta client subscribes to these once the CDS response is handled, as Envoy does.
		ctx.RegisterDependency(v3.EndpointType, edsName(cl))
		c.wantEDS[edsName(cl)] = true
	}
}

func (c *collector) onListener(_ adsc.HandlerContext, name, _ string, l *listenerv3.Listener, ev adsc.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev == adsc.EventDelete {
		delete(c.snap.listeners, name)
		return
	}
	c.snap.listeners[name] = l
}

func (c *collector) onEndpoints(_ adsc.HandlerContext, name, _ string, cla *endpointv3.ClusterLoadAssignment, ev adsc.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev == adsc.EventDelete {
		delete(c.snap.endpoints, name)
		return
	}
	c.snap.endpoints[name] = cla
}

// complete reports whether the snapshot holds istiod's full answer. istiod answers every
// subscribed EDS name, with an empty ClusterLoadAssignment when a cluster has no endpoints
// (pilot/pkg/xds/eds.go buildEndpoints).
func (c *collector) complete() bool {
	if !c.handled[v3.ClusterType] || !c.handled[v3.ListenerType] {
		return false
	}
	for name := range c.wantEDS {
		if _, ok := c.snap.endpoints[name]; !ok {
			return false
		}
	}
	return true
}

func (c *collector) progress() string {
	got := 0
	for name := range c.wantEDS {
		if _, ok := c.snap.endpoints[name]; ok {
			got++
		}
	}
	return fmt.Sprintf("CDS handled: %t, LDS handled: %t, EDS answered: %d of %d",
		c.handled[v3.ClusterType], c.handled[v3.ListenerType], got, len(c.wantEDS))
}

// intercept wraps the ADS stream the delta client opens. The client handles a response fully
// (handlers, ACK, new subscriptions) before it asks the stream for the next one
// (pkg/adsc/delta.go handleRecv), so a RecvMsg call marks the previous response as handled.
// It also records the stream's error, which the client only logs.
func (c *collector) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption,
) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		c.fail(err)
		return nil, err
	}
	return &observedStream{ClientStream: s, c: c}, nil
}

type observedStream struct {
	grpc.ClientStream
	c *collector
}

func (s *observedStream) RecvMsg(m any) error {
	s.c.mu.Lock()
	if s.c.current != "" {
		s.c.handled[s.c.current] = true
		s.c.current = ""
		s.c.notify()
	}
	s.c.mu.Unlock()
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.c.fail(err)
		return err
	}
	if r, ok := m.(*discovery.DeltaDiscoveryResponse); ok {
		s.c.mu.Lock()
		s.c.current = r.GetTypeUrl()
		s.c.answered = true
		s.c.mu.Unlock()
	}
	return nil
}

func (c *collector) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.notify()
}

// probe connects to istiod as the given node and returns its answer.
func probe(ctx context.Context, o *options, n *node) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	col := newCollector(o.services)
	cfg := &adsc.DeltaADSConfig{Config: adsc.Config{
		ClientName: "xds-probe",
		Namespace:  o.namespace,
		Workload:   o.pod,
		NodeType:   n.Type,
		IP:         o.ip,
		Meta:       n.Metadata,
		Locality:   n.Locality,
		// Own dial options replace adsc's insecure default (pkg/adsc/adsc.go dialWithConfig), so
		// plaintext is asked for explicitly: istiod's 15010 port is plaintext.
		GrpcOpts: []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStreamInterceptor(col.intercept),
		},
	}}
	client := adsc.NewDelta(o.xds, cfg,
		adsc.Register(col.onCluster),
		adsc.Register(col.onListener),
		adsc.Register(col.onEndpoints),
		adsc.Watch[*clusterv3.Cluster]("*"),
		adsc.Watch[*listenerv3.Listener]("*"),
	)
	// NewDelta defaults to reconnecting forever; a probe reports the failure instead.
	cfg.BackoffPolicy = nil
	stopped := make(chan struct{})
	go func() {
		client.Run(ctx)
		close(stopped)
	}()
	defer func() {
		cancel()
		<-stopped
	}()

	for {
		select {
		case <-col.changed:
		case <-stopped:
		case <-ctx.Done():
			col.mu.Lock()
			defer col.mu.Unlock()
			if col.complete() {
				return &col.snap, nil
			}
			return nil, fmt.Errorf("istiod at %s did not answer within %s (%s)", o.xds, o.timeout, col.progress())
		}
		col.mu.Lock()
		done, err, answered := col.complete(), col.err, col.answered
		col.mu.Unlock()
		switch {
		case done:
			return &col.snap, nil
		case err != nil && !answered && status.Code(err) == codes.Unavailable:
			return nil, fmt.Errorf("cannot reach istiod at %s: %v", o.xds, err)
		case err != nil:
			return nil, fmt.Errorf("xDS stream with istiod at %s failed: %v", o.xds, err)
		}
		select {
		case <-stopped:
			return nil, fmt.Errorf("the xDS client for istiod at %s stopped before istiod answered (--verbose shows why)", o.xds)
		default:
		}
	}
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

// toAddress renders an endpoint or listener address. Besides IP sockets, istiod uses Envoy
// internal addresses for HBONE tunnels (pilot/pkg/networking/util BuildInternalAddressWithIdentifier).
func toAddress(a *corev3.Address) (string, uint32) {
	switch {
	case a.GetSocketAddress() != nil:
		return a.GetSocketAddress().GetAddress(), a.GetSocketAddress().GetPortValue()
	case a.GetEnvoyInternalAddress() != nil:
		ia := a.GetEnvoyInternalAddress()
		return "envoy_internal:" + ia.GetServerListenerName() + "/" + ia.GetEndpointId(), 0
	case a.GetPipe() != nil:
		return "unix:" + a.GetPipe().GetPath(), 0
	}
	return "", 0
}

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

var logOnce sync.Once

// configureLogging sends Istio's logs to stderr (its default is stdout, pkg/log/options.go),
// keeping stdout for the JSON, and quiets them unless --verbose. Only the first call counts:
// log.Configure swaps global loggers that running goroutines read.
func configureLogging(verbose bool) {
	logOnce.Do(func() {
		o := log.DefaultOptions()
		o.OutputPaths = []string{"stderr"}
		level := log.ErrorLevel
		if verbose {
			level = log.InfoLevel
		}
		o.SetDefaultOutputLevel(log.OverrideScopeName, level)
		_ = log.Configure(o)
	})
}

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
