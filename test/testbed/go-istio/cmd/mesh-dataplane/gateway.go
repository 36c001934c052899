package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/wellknown"

	"tailmesh.dev/testbed-istio/internal/ads"
)

// The east-west gateway (istio-eastwestgateway, `pilot-agent proxy router`) with the
// multicluster recipe's cross-network-gateway Gateway: tls mode AUTO_PASSTHROUGH on 15443.
// istiod gives such a server one filter chain per service port (and subset), matching the SNI
// outbound_.<port>_<subset>_.<host> and Istio's mTLS ALPNs, whose tcp_proxy sends the still
// encrypted stream to the EDS cluster of the same name (pilot/pkg/networking/core/gateway.go
// builtAutoPassthroughFilterChains). This reads the SNI as Envoy's tls_inspector does, picks the
// filter chain as Envoy's filter chain match does, and splices the bytes to an endpoint chosen as
// Envoy's load balancer would.

// gatewayRoute is where a connection goes.
type gatewayRoute struct {
	listener string
	chain    string
	cluster  string
}

// routeSNI finds the filter chain of the listener on port for a ClientHello and the cluster its
// tcp_proxy names. Errors begin with "no route for SNI <sni>".
func routeSNI(snap *ads.Snapshot, port uint32, hello *clientHello, intn func(int) int) (*gatewayRoute, error) {
	noRoute := func(format string, args ...any) error {
		return fmt.Errorf("no route for SNI %s: %s", hello.ServerName, fmt.Sprintf(format, args...))
	}
	l := listenerOnPort(snap, port)
	if l == nil {
		return nil, noRoute("istiod sent no listener on port %d", port)
	}
	fc := matchFilterChain(l, port, hello)
	if fc == nil {
		return nil, noRoute("no filter chain of listener %s matches (ALPN %v)", l.GetName(), hello.ALPN)
	}
	cluster, err := tcpProxyCluster(fc, intn)
	if err != nil {
		return nil, noRoute("filter chain %q of listener %s: %v", fc.GetName(), l.GetName(), err)
	}
	if cluster == "BlackHoleCluster" {
		return nil, noRoute("filter chain %q of listener %s sends it to BlackHoleCluster", fc.GetName(), l.GetName())
	}
	if _, ok := snap.Clusters[cluster]; !ok {
		return nil, noRoute("istiod sent no cluster %s", cluster)
	}
	return &gatewayRoute{listener: l.GetName(), chain: fc.GetName(), cluster: cluster}, nil
}

// listenerOnPort is the listener bound to port (istiod names gateway listeners 0.0.0.0_<port>).
func listenerOnPort(snap *ads.Snapshot, port uint32) *listenerv3.Listener {
	names := make([]string, 0, len(snap.Listeners))
	for name := range snap.Listeners {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l := snap.Listeners[name]
		if _, p := ads.ToAddress(l.GetAddress()); p == port {
			return l
		}
	}
	return nil
}

// matchFilterChain applies Envoy's filter chain match in its order, each step keeping the most
// specific candidates (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/listener/v3/listener_components.proto#envoy-v3-api-msg-config-listener-v3-filterchainmatch):
// destination port, server name (exact, then the longest wildcard suffix, then chains without
// server names), transport protocol ("tls" for a ClientHello), application protocol (the client's
// ALPN in order). Chains that restrict source addresses are skipped (Istio's gateway chains do
// not). Without a match, the listener's default filter chain applies.
func matchFilterChain(l *listenerv3.Listener, port uint32, hello *clientHello) *listenerv3.FilterChain {
	cands := []*listenerv3.FilterChain{}
	for _, fc := range l.GetFilterChains() {
		m := fc.GetFilterChainMatch()
		if len(m.GetSourcePrefixRanges()) > 0 || len(m.GetDirectSourcePrefixRanges()) > 0 || len(m.GetSourcePorts()) > 0 {
			continue
		}
		cands = append(cands, fc)
	}
	// destination_port
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, bool) {
		if m.GetDestinationPort() == nil {
			return true, false
		}
		return m.GetDestinationPort().GetValue() == port, true
	})
	// server_names
	sni := strings.ToLower(hello.ServerName)
	cands = narrowServerNames(cands, sni)
	// transport_protocol
	cands = narrow(cands, func(m *listenerv3.FilterChainMatch) (bool, bool) {
		switch m.GetTransportProtocol() {
		case "":
			return true, false
		case "tls":
			return true, true
		}
		return false, true
	})
	// application_protocols, in the client's order
	var byALPN []*listenerv3.FilterChain
	for _, proto := range hello.ALPN {
		for _, fc := range cands {
			if contains(fc.GetFilterChainMatch().GetApplicationProtocols(), proto) {
				byALPN = append(byALPN, fc)
			}
		}
		if len(byALPN) > 0 {
			break
		}
	}
	if len(byALPN) == 0 {
		for _, fc := range cands {
			if len(fc.GetFilterChainMatch().GetApplicationProtocols()) == 0 {
				byALPN = append(byALPN, fc)
			}
		}
	}
	if len(byALPN) > 0 {
		return byALPN[0]
	}
	return l.GetDefaultFilterChain()
}

// narrow keeps the candidates that match specifically if there are any, else those that do not
// constrain the field. test returns (matches, constrains).
func narrow(cands []*listenerv3.FilterChain, test func(*listenerv3.FilterChainMatch) (bool, bool)) []*listenerv3.FilterChain {
	var specific, any []*listenerv3.FilterChain
	for _, fc := range cands {
		ok, constrains := test(fc.GetFilterChainMatch())
		switch {
		case ok && constrains:
			specific = append(specific, fc)
		case ok:
			any = append(any, fc)
		}
	}
	if len(specific) > 0 {
		return specific
	}
	return any
}

func narrowServerNames(cands []*listenerv3.FilterChain, sni string) []*listenerv3.FilterChain {
	has := func(fc *listenerv3.FilterChain, name string) bool {
		for _, n := range fc.GetFilterChainMatch().GetServerNames() {
			if strings.ToLower(n) == name {
				return true
			}
		}
		return false
	}
	pick := func(name string) []*listenerv3.FilterChain {
		var out []*listenerv3.FilterChain
		for _, fc := range cands {
			if has(fc, name) {
				out = append(out, fc)
			}
		}
		return out
	}
	if sni != "" {
		if out := pick(sni); len(out) > 0 {
			return out
		}
		// *.b.c before *.c
		rest := sni
		for {
			i := strings.Index(rest, ".")
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			if out := pick("*." + rest); len(out) > 0 {
				return out
			}
		}
	}
	var out []*listenerv3.FilterChain
	for _, fc := range cands {
		if len(fc.GetFilterChainMatch().GetServerNames()) == 0 {
			out = append(out, fc)
		}
	}
	return out
}

// tcpProxyCluster reads the cluster the chain's tcp_proxy sends to (a weighted choice when it
// names several).
func tcpProxyCluster(fc *listenerv3.FilterChain, intn func(int) int) (string, error) {
	for _, f := range fc.GetFilters() {
		if f.GetName() != wellknown.TCPProxy {
			continue
		}
		tp := &tcpproxyv3.TcpProxy{}
		if err := f.GetTypedConfig().UnmarshalTo(tp); err != nil {
			return "", fmt.Errorf("reading its tcp_proxy: %v", err)
		}
		if c := tp.GetCluster(); c != "" {
			return c, nil
		}
		wcs := tp.GetWeightedClusters().GetClusters()
		total := 0
		for _, c := range wcs {
			total += int(c.GetWeight())
		}
		if total > 0 {
			r := intn(total)
			for _, c := range wcs {
				r -= int(c.GetWeight())
				if r < 0 {
					return c.GetName(), nil
				}
			}
		}
		return "", errors.New("its tcp_proxy names no cluster")
	}
	return "", errors.New("it has no tcp_proxy filter")
}

// pickEndpoint chooses an endpoint of a cluster as Envoy's load balancer would (lb.go). Errors
// begin with "no healthy endpoint for <cluster>".
func pickEndpoint(snap *ads.Snapshot, cluster string, intn func(int) int) (*lbHost, *clusterv3.Cluster, error) {
	cl := snap.Clusters[cluster]
	cla := cl.GetLoadAssignment()
	if cl.GetType() == clusterv3.Cluster_EDS {
		cla = snap.Endpoints[ads.EDSName(cl)]
	}
	h, err := newLoadBalancer(cl, cla).pick(intn)
	if err != nil {
		return nil, cl, fmt.Errorf("no healthy endpoint for %s (%s)", cluster, describeAssignment(cl, cla))
	}
	return h, cl, nil
}

// describeAssignment says what istiod sent for a cluster, for the log line of a failed pick.
func describeAssignment(cl *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) string {
	if cl == nil {
		return "no such cluster from istiod"
	}
	if cla == nil {
		return fmt.Sprintf("%s cluster, no endpoints from istiod (EDS %s)", cl.GetType(), ads.EDSName(cl))
	}
	var hosts []string
	for _, l := range cla.GetEndpoints() {
		for _, e := range l.GetLbEndpoints() {
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			hosts = append(hosts, fmt.Sprintf("%s:%d %s p%d", sa.GetAddress(), sa.GetPortValue(), e.GetHealthStatus(), l.GetPriority()))
		}
	}
	return fmt.Sprintf("%d endpoints: %s", len(hosts), strings.Join(hosts, ", "))
}

// gateway serves the gateway ports.
type gateway struct {
	podIP string
	view  func(func(*ads.Snapshot)) bool
	log   *logger
	// helloTimeout bounds the wait for the ClientHello (Envoy's listener_filters_timeout, 15s).
	helloTimeout time.Duration
	wg           sync.WaitGroup
}

func (g *gateway) serve(l net.Listener, port uint32) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.handle(c, port)
		}()
	}
}

func (g *gateway) handle(c net.Conn, port uint32) {
	defer c.Close()
	name := net.JoinHostPort(g.podIP, strconv.Itoa(int(port)))
	_ = c.SetReadDeadline(time.Now().Add(g.helloTimeout))
	hello, replay, err := readClientHello(c)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		g.log.Printf("gateway %s: connection from %s: %v", name, c.RemoteAddr(), err)
		return
	}
	var route *gatewayRoute
	var host *lbHost
	var cl *clusterv3.Cluster
	var rerr error
	if !g.view(func(snap *ads.Snapshot) {
		route, rerr = routeSNI(snap, port, hello, rand.IntN)
		if rerr == nil {
			host, cl, rerr = pickEndpoint(snap, route.cluster, rand.IntN)
		}
	}) {
		rerr = fmt.Errorf("no route for SNI %s: no config from istiod yet", hello.ServerName)
	}
	if rerr != nil {
		g.log.Printf("gateway %s: connection from %s: %v", name, c.RemoteAddr(), rerr)
		return
	}
	target := net.JoinHostPort(host.Address, strconv.Itoa(int(host.Port)))
	timeout := 10 * time.Second
	if d := cl.GetConnectTimeout(); d != nil && d.AsDuration() > 0 {
		timeout = d.AsDuration()
	}
	up, err := net.DialTimeout("tcp", target, timeout)
	if err != nil {
		g.log.Printf("gateway %s: connection from %s (SNI %s): connecting to %s of %s: %v", name, c.RemoteAddr(), hello.ServerName, target, route.cluster, err)
		return
	}
	defer up.Close()
	if _, err := up.Write(replay); err != nil {
		g.log.Printf("gateway %s: connection from %s: writing to %s: %v", name, c.RemoteAddr(), target, err)
		return
	}
	splice(c, up)
}

// splice copies both ways until both sides are done, passing half-closes on.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	wg.Add(2)
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

func runGateway(ctx context.Context, o *options, stdout io.Writer, log *logger) int {
	n, err := o.node(pm.Router)
	if err != nil {
		log.Printf("building node metadata: %v", err)
		return 1
	}
	// Ready once CDS and LDS are handled and every EDS cluster has its endpoints: Envoy warms
	// clusters (EDS) before it initializes listeners
	// (https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/operations/init).
	loop := newADSLoop(adsConfig(o, n, true, nil), (*ads.Session).Complete, log)
	firstConfig := make(chan struct{})
	var once sync.Once
	go loop.run(ctx, func() { once.Do(func() { close(firstConfig) }) })
	if _, ok := o.meta["REQUESTED_NETWORK_VIEW"]; !ok {
		// The gateway chart sets ISTIO_META_REQUESTED_NETWORK_VIEW from networkGateway
		// (manifests/charts/gateway/templates/deployment.yaml); without it istiod sends this router
		// the endpoints of every network (pilot/pkg/model/proxy_view.go).
		log.Printf("note: no --meta REQUESTED_NETWORK_VIEW=<network>: istiod sends this gateway endpoints of every network")
	}
	log.Printf("waiting for istiod at %s (node %s)", o.xds, n.ID)
	select {
	case <-firstConfig:
	case <-ctx.Done():
		return 0
	}
	g := &gateway{podIP: o.podIP, view: loop.View, log: log, helloTimeout: 15 * time.Second}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for _, p := range o.ports {
		addr := net.JoinHostPort(o.podIP, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			log.Printf("gateway listener: %v", err)
			return 1
		}
		listeners = append(listeners, l)
		go g.serve(l, uint32(p))
		log.Printf("gateway %s: routing TLS by SNI (AUTO_PASSTHROUGH)", addr)
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	log.Printf("shutting down")
	return 0
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
