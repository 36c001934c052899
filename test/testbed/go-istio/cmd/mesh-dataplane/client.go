package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pkg/config/host"
	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/test/echo"
	echoproto "istio.io/istio/pkg/test/echo/proto"
	"istio.io/istio/pkg/wellknown"

	"tailmesh.dev/testbed-istio/internal/ads"
)

// The client subcommand stands in for a client pod's sidecar outbound path: the app's request
// to <host>:<port> is routed to the cluster outbound|<port>||<host> (pilot/pkg/model/service.go
// BuildSubsetKey; the default route of the outbound HTTP route istiod builds for the service),
// an endpoint is chosen as Envoy's load balancer would (lb.go), and the connection uses the
// transport socket the cluster's transport_socket_matches select for that endpoint
// (pilot/pkg/networking/core/cluster_tls.go: "tlsMode-istio" with Istio's UpstreamTlsContext for
// endpoints labelled tlsMode=istio, "tlsMode-disabled" plaintext otherwise).

// upstreamTransport is the transport socket chosen for an endpoint.
type upstreamTransport struct {
	// name is the transport socket match's name, or "default" for the cluster's transport_socket.
	name string
	// tls is the UpstreamTlsContext; nil for plaintext.
	tls *tlsv3.UpstreamTlsContext
	err error
}

// transportFor applies transport_socket_matches as Envoy does
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/cluster/v3/cluster.proto#envoy-v3-api-field-config-cluster-v3-cluster-transport-socket-matches):
// the first match whose fields all equal the endpoint's "envoy.transport_socket_match" metadata
// (an empty match matches every endpoint), else the cluster's transport_socket.
func transportFor(cl *clusterv3.Cluster, ep *endpointv3.LbEndpoint) upstreamTransport {
	md := ep.GetMetadata().GetFilterMetadata()[util.EnvoyTransportSocketMetadataKey]
	for _, m := range cl.GetTransportSocketMatches() {
		if structSubset(m.GetMatch(), md) {
			return decodeTransport(m.GetName(), m.GetTransportSocket())
		}
	}
	return decodeTransport("default", cl.GetTransportSocket())
}

func structSubset(match, md *structpb.Struct) bool {
	for k, v := range match.GetFields() {
		got, ok := md.GetFields()[k]
		if !ok || !proto.Equal(v, got) {
			return false
		}
	}
	return true
}

func decodeTransport(name string, ts *corev3.TransportSocket) upstreamTransport {
	t := upstreamTransport{name: name}
	switch {
	case ts == nil, ts.GetName() == wellknown.TransportSocketRawBuffer:
	case ts.GetName() == wellknown.TransportSocketTLS:
		t.tls = &tlsv3.UpstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(t.tls); err != nil {
			t.err = fmt.Errorf("reading the UpstreamTlsContext of transport socket %s: %v", name, err)
		}
	default:
		t.err = fmt.Errorf("transport socket %s (%s) is not supported here", name, ts.GetName())
	}
	return t
}

// sanMatchers are the SAN matchers of Istio's validation context (cluster_tls.go: the
// CombinedValidationContext's default_validation_context match_subject_alt_names, exact matches
// of the service's accounts).
func sanMatchers(ctx *tlsv3.UpstreamTlsContext) ([]*matcherv3.StringMatcher, []*tlsv3.SubjectAltNameMatcher) {
	c := ctx.GetCommonTlsContext()
	vc := c.GetValidationContext()
	if vc == nil {
		vc = c.GetCombinedValidationContext().GetDefaultValidationContext()
	}
	return vc.GetMatchSubjectAltNames(), vc.GetMatchTypedSubjectAltNames()
}

// matchString is Envoy's StringMatcher (safe_regex must match the whole string).
func matchString(m *matcherv3.StringMatcher, s string) bool {
	ic := m.GetIgnoreCase()
	eq := func(a, b string) bool { return a == b || ic && strings.EqualFold(a, b) }
	low := func(x string) string {
		if ic {
			return strings.ToLower(x)
		}
		return x
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return eq(p.Exact, s)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(low(s), low(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(low(s), low(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(low(s), low(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		return err == nil && re.MatchString(s)
	}
	return false
}

// checkSANs verifies the server certificate's SANs against the matchers; no matchers, no check.
func checkSANs(leaf *x509.Certificate, untyped []*matcherv3.StringMatcher, typed []*tlsv3.SubjectAltNameMatcher) error {
	if len(untyped) == 0 && len(typed) == 0 {
		return nil
	}
	uris := uriSANs(leaf)
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	all := append(append(append(append([]string{}, uris...), leaf.DNSNames...), leaf.EmailAddresses...), ips...)
	for _, m := range untyped {
		for _, s := range all {
			if matchString(m, s) {
				return nil
			}
		}
	}
	for _, m := range typed {
		var cands []string
		switch m.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_URI:
			cands = uris
		case tlsv3.SubjectAltNameMatcher_DNS:
			cands = leaf.DNSNames
		case tlsv3.SubjectAltNameMatcher_EMAIL:
			cands = leaf.EmailAddresses
		case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
			cands = ips
		}
		for _, s := range cands {
			if matchString(m.GetMatcher(), s) {
				return nil
			}
		}
	}
	var want []string
	for _, m := range untyped {
		want = append(want, matcherString(m))
	}
	for _, m := range typed {
		want = append(want, strings.ToLower(m.GetSanType().String())+" "+matcherString(m.GetMatcher()))
	}
	return fmt.Errorf("x509: the server certificate's SANs %v match none of the cluster's subject alt names [%s]", all, strings.Join(want, ", "))
}

func matcherString(m *matcherv3.StringMatcher) string {
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return p.Exact
	case *matcherv3.StringMatcher_Prefix:
		return p.Prefix + "*"
	case *matcherv3.StringMatcher_Suffix:
		return "*" + p.Suffix
	case *matcherv3.StringMatcher_Contains:
		return "*" + p.Contains + "*"
	case *matcherv3.StringMatcher_SafeRegex:
		return "~" + p.SafeRegex.GetRegex()
	}
	return "?"
}

// upstreamTLSConfig is Envoy's client side of Istio's mTLS: the workload certificate chain (SDS
// "default"), the server chain verified against the mesh root (SDS "ROOTCA") and the cluster's SAN
// matchers, SNI and ALPN from the UpstreamTlsContext. No hostname is checked: the SNI is a cluster
// name, not a certificate name.
func upstreamTLSConfig(ctx *tlsv3.UpstreamTlsContext, cert *tls.Certificate, roots *x509.CertPool) *tls.Config {
	untyped, typed := sanMatchers(ctx)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: ctx.GetSni(),
		NextProtos: ctx.GetCommonTlsContext().GetAlpnProtocols(),
		// Always send the certificate, whatever CA names the server asks for, as Envoy does.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		InsecureSkipVerify:   true, // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if _, err := verifyChain(cs.PeerCertificates, roots); err != nil {
				return err
			}
			return checkSANs(cs.PeerCertificates[0], untyped, typed)
		},
	}
}

// Output, one JSON document.
type clientOutput struct {
	Node      clientNodeJSON   `json:"node"`
	Cluster   string           `json:"cluster"`
	Error     string           `json:"error,omitempty"`
	Endpoints []clientEndpoint `json:"endpoints"`
	Requests  []requestResult  `json:"requests"`
	// OutlierDetection is the cluster's, as istiod sent it; absent when it has none.
	OutlierDetection *outlierJSON `json:"outlierDetection,omitempty"`
}

// outlierJSON is the part of a cluster's outlier_detection the client acts on, defaults applied.
type outlierJSON struct {
	Consecutive5xx     uint32 `json:"consecutive5xx"`
	Enforcing5xx       uint32 `json:"enforcingConsecutive5xx"`
	MaxEjectionPercent uint32 `json:"maxEjectionPercent"`
	BaseEjectionTimeMs int64  `json:"baseEjectionTimeMs"`
}

type clientNodeJSON struct {
	ID        string `json:"id"`
	ClusterID string `json:"clusterId"`
	Network   string `json:"network"`
	Identity  string `json:"identity"`
}

type localityJSON struct {
	Region  string `json:"region"`
	Zone    string `json:"zone"`
	Subzone string `json:"subzone"`
}

type clientEndpoint struct {
	Address  string `json:"address"`
	Port     uint32 `json:"port"`
	Priority uint32 `json:"priority"`
	// Weight is the endpoint's load_balancing_weight (1 when unset, as Envoy reads it),
	// LocalityWeight its locality's (0 when unset).
	Weight         uint32       `json:"weight"`
	LocalityWeight uint32       `json:"localityWeight"`
	HealthStatus   string       `json:"healthStatus"`
	TLSMode        string       `json:"tlsMode"`
	Locality       localityJSON `json:"locality"`
	// Cluster is the endpoint's cluster from istiod's "istio"/"workload" metadata, if any.
	Cluster string `json:"cluster"`
	// TransportSocket is the transport socket match chosen for it ("tlsMode-istio", ...).
	TransportSocket string `json:"transportSocket"`
}

type requestResult struct {
	Endpoint        string  `json:"endpoint"`
	TLS             bool    `json:"tls"`
	SNI             string  `json:"sni"`
	ALPN            string  `json:"alpn"`
	DurationMs      float64 `json:"durationMs"`
	Code            int     `json:"code"`
	Hostname        string  `json:"hostname"`
	Cluster         string  `json:"cluster"`
	PeerIdentity    string  `json:"peerIdentity"`
	ServerSawClient string  `json:"serverSawClient"`
	ServerSawIssuer string  `json:"serverSawIssuer"`
	Error           string  `json:"error"`
	// Ejected: this request's result made outlier detection eject its endpoint.
	Ejected bool `json:"ejected,omitempty"`
}

// requestFailure is a request that failed after its connection was up: the per-request timeout
// (LocalOriginTimeout) or a reset (ExtOriginRequestFailed), in Envoy's outlier terms.
func requestFailure(ctx context.Context) outcome {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return outcome{timedOut: true}
	}
	return outcome{requestFailed: true}
}

func toLocality(l *corev3.Locality) localityJSON {
	return localityJSON{Region: l.GetRegion(), Zone: l.GetZone(), Subzone: l.GetSubZone()}
}

func describeEndpoint(cl *clusterv3.Cluster, h *lbHost) clientEndpoint {
	md := h.Endpoint.GetMetadata().GetFilterMetadata()
	e := clientEndpoint{
		Address:         h.Address,
		Port:            h.Port,
		Priority:        h.Priority,
		Weight:          h.Weight,
		LocalityWeight:  h.LocalityWeight,
		HealthStatus:    h.Endpoint.GetHealthStatus().String(),
		TLSMode:         md[util.EnvoyTransportSocketMetadataKey].GetFields()[model.TLSModeLabelShortname].GetStringValue(),
		Locality:        toLocality(h.Locality),
		TransportSocket: transportFor(cl, h.Endpoint).name,
	}
	// "workload;namespace;canonical name;revision;cluster" (pilot/pkg/networking/util/util.go
	// AppendLbEndpointMetadata).
	if w := md[util.IstioMetadataKey].GetFields()["workload"].GetStringValue(); w != "" {
		if parts := strings.Split(w, ";"); len(parts) == 5 {
			e.Cluster = parts[4]
		}
	}
	return e
}

// clientRun holds what the requests need.
type clientRun struct {
	host, path string
	port       int
	timeout    time.Duration
	cluster    *clusterv3.Cluster
	lb         *loadBalancer
	cert       *tls.Certificate
	roots      *x509.CertPool
	intn       func(int) int
	// outlier is nil for a cluster without outlier_detection.
	outlier *outlierDetector
}

// hostHeader is what an app's HTTP client sends for http://<host>:<port>/.
func (c *clientRun) hostHeader() string {
	if c.port == 80 {
		return c.host
	}
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

func (c *clientRun) request(ctx context.Context) (res requestResult) {
	start := time.Now()
	defer func() { res.DurationMs = math.Round(float64(time.Since(start).Microseconds())/100) / 10 }()
	if c.outlier.unejectDue() {
		c.lb.computeLoads()
	}
	h, err := c.lb.pick(c.intn)
	if err != nil {
		res.Error = fmt.Sprintf("no healthy endpoint for %s", c.cluster.GetName())
		return res
	}
	// What this request tells outlier detection about h, charged once it is known.
	var o outcome
	defer func() {
		if c.outlier.charge(h, o) {
			c.lb.computeLoads()
			res.Ejected = true
		}
	}()
	addr := net.JoinHostPort(h.Address, strconv.Itoa(int(h.Port)))
	res.Endpoint = addr
	tr := transportFor(c.cluster, h.Endpoint)
	if tr.err != nil {
		res.Error = tr.err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// A hostname (a remote network's gateway given by name) goes through the system resolver.
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		o.connectFailed = true
		res.Error = fmt.Sprintf("connect to %s: %v", addr, err)
		return res
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if tr.tls != nil {
		res.TLS = true
		res.SNI = tr.tls.GetSni()
		tc := tls.Client(conn, upstreamTLSConfig(tr.tls, c.cert, c.roots))
		if err := tc.HandshakeContext(ctx); err != nil {
			// Envoy's connection is up only once its transport socket's handshake is done.
			o.connectFailed = true
			res.Error = fmt.Sprintf("tls handshake with %s: %v", addr, err)
			return res
		}
		cs := tc.ConnectionState()
		res.ALPN = cs.NegotiatedProtocol
		res.PeerIdentity = strings.Join(uriSANs(cs.PeerCertificates[0]), ",")
		conn = tc
	}
	url := "http://" + c.hostHeader() + c.path
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	req.Host = c.hostHeader()
	req.Header.Set("User-Agent", "mesh-dataplane")
	req.Close = true
	if err := req.Write(conn); err != nil {
		o = requestFailure(ctx)
		res.Error = fmt.Sprintf("sending the request to %s: %v", addr, err)
		return res
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		o = requestFailure(ctx)
		res.Error = fmt.Sprintf("reading the response from %s: %v", addr, err)
		if strings.Contains(err.Error(), "remote error: tls") {
			res.Error += " (the server rejected this workload's certificate)"
		}
		return res
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	res.Code = resp.StatusCode
	o.code = resp.StatusCode
	if err != nil {
		res.Error = fmt.Sprintf("reading the response body from %s: %v", addr, err)
		return res
	}
	parsed := echo.ParseResponses(&echoproto.ForwardEchoRequest{Url: url},
		&echoproto.ForwardEchoResponse{Output: []string{string(body)}})[0]
	res.Hostname = parsed.Hostname
	res.Cluster = parsed.Cluster
	res.ServerSawClient = xfccURI(strings.Join(parsed.RequestHeaders.Values(headerXFCC), ","))
	res.ServerSawIssuer = parsed.RequestHeaders.Get(headerPeerIssuer)
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		res.Error = fmt.Sprintf("HTTP %d from %s: %s", resp.StatusCode, addr, line)
	}
	return res
}

// fetchCertOnce gets a workload certificate within the deadline, retrying with back-off.
func fetchCertOnce(ctx context.Context, m *certManager) (*workloadCert, error) {
	type result struct {
		w   *workloadCert
		err error
	}
	backoff := 500 * time.Millisecond
	var last error
	for {
		ch := make(chan result, 1)
		go func() {
			w, err := m.fetchOnce()
			ch <- result{w, err}
		}()
		select {
		case r := <-ch:
			if r.err == nil {
				return r.w, nil
			}
			last = r.err
			m.log.Printf("workload certificate for %s: %v; retrying in %s", m.identity, r.err, backoff)
		case <-ctx.Done():
			if last == nil {
				last = fmt.Errorf("the CA did not answer")
			}
			return nil, last
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, last
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// startAnswered opens an xDS session and waits until done holds. When istiod cannot be reached
// before it answers (a restarted istiod whose old pod is still listed, kube-proxy resetting while no
// endpoint is ready), it reconnects with a backoff, as Envoy's xDS stream does
// (envoy source/common/config/grpc_stream.h), until setupCtx ends.
func startAnswered(ctx, setupCtx context.Context, cfg ads.Config, bound time.Duration, log *logger, done func(*ads.Session) bool) (*ads.Session, error) {
	backoff := 250 * time.Millisecond
	for {
		session := ads.Start(ctx, cfg)
		err := session.Wait(setupCtx, bound, done)
		var unreachable *ads.UnreachableError
		if err == nil || !errors.As(err, &unreachable) {
			return session, err
		}
		session.Close()
		log.Printf("%v; reconnecting in %s", err, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-setupCtx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func runClient(ctx context.Context, o *options, stdout io.Writer, log *logger) int {
	n, err := o.node(pm.SidecarProxy)
	if err != nil {
		log.Printf("building node metadata: %v", err)
		return 1
	}
	clusterName := model.BuildSubsetKey(model.TrafficDirectionOutbound, "", host.Name(o.host), o.port)
	bound := o.timeout * time.Duration(o.count)
	setupCtx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()

	roots := &rootSource{path: o.rootCert}
	certs := newCertManager(o, roots, log)
	type certResult struct {
		w   *workloadCert
		err error
	}
	certCh := make(chan certResult, 1)
	go func() {
		w, err := fetchCertOnce(setupCtx, certs)
		certCh <- certResult{w, err}
	}()

	// Done when the cluster and, for an EDS cluster, its endpoints arrived, or CDS was handled
	// without it (istiod has no such cluster for this proxy).
	session, err := startAnswered(ctx, setupCtx, adsConfig(o, n, false, func(c string) bool { return c == clusterName }), bound, log, func(s *ads.Session) bool {
		cdsHandled, done := s.Ready(), false
		s.View(func(snap *ads.Snapshot) {
			cl, ok := snap.Clusters[clusterName]
			switch {
			case ok && cl.GetType() == clusterv3.Cluster_EDS:
				_, done = snap.Endpoints[ads.EDSName(cl)]
			case ok:
				done = true
			default:
				done = cdsHandled
			}
		})
		return done
	})
	if session != nil {
		defer session.Close()
	}
	if err != nil {
		log.Printf("%v", err)
		return 1
	}
	cr := <-certCh
	if cr.err != nil {
		log.Printf("no workload certificate for %s from the CA at %s within %s: %v", o.spiffeID(), o.ca, bound, cr.err)
		return 1
	}
	pool, err := roots.Pool()
	if err != nil {
		log.Printf("%v", err)
		return 1
	}

	out := clientOutput{
		Node: clientNodeJSON{
			ID: n.ID, ClusterID: o.clusterID, Network: o.network, Identity: uriSANsOr(cr.w.leaf(), o.spiffeID()),
		},
		Cluster:   clusterName,
		Endpoints: []clientEndpoint{},
		Requests:  []requestResult{},
	}
	var cl *clusterv3.Cluster
	var cla *endpointv3.ClusterLoadAssignment
	session.View(func(snap *ads.Snapshot) {
		cl = snap.Clusters[clusterName]
		if cl != nil {
			cla = cl.GetLoadAssignment()
			if cl.GetType() == clusterv3.Cluster_EDS {
				cla = snap.Endpoints[ads.EDSName(cl)]
			}
		}
	})
	if cl == nil {
		out.Error = fmt.Sprintf("istiod sent no cluster %s to this proxy", clusterName)
		for range o.count {
			out.Requests = append(out.Requests, requestResult{Error: out.Error})
		}
	} else {
		if t := cl.GetType(); t != clusterv3.Cluster_EDS && t != clusterv3.Cluster_STATIC && t != clusterv3.Cluster_STRICT_DNS && t != clusterv3.Cluster_LOGICAL_DNS {
			out.Error = fmt.Sprintf("cluster %s has discovery type %s, which has no endpoints to choose from here", clusterName, t)
		}
		run := &clientRun{
			host: o.host, path: o.path, port: o.port, timeout: o.timeout,
			cluster: cl, lb: newLoadBalancer(cl, cla), cert: cr.w.cert, roots: pool, intn: rand.IntN,
		}
		run.outlier = newOutlierDetector(cl, run.lb.hosts, rand.IntN, time.Now)
		if od := cl.GetOutlierDetection(); od != nil {
			base := int64(30_000)
			if b := od.GetBaseEjectionTime(); b != nil {
				base = b.AsDuration().Milliseconds()
			}
			out.OutlierDetection = &outlierJSON{
				Consecutive5xx:     u32(od.GetConsecutive_5Xx(), 5),
				Enforcing5xx:       u32(od.GetEnforcingConsecutive_5Xx(), 100),
				MaxEjectionPercent: u32(od.GetMaxEjectionPercent(), 10),
				BaseEjectionTimeMs: base,
			}
		}
		for _, h := range run.lb.hosts {
			out.Endpoints = append(out.Endpoints, describeEndpoint(cl, h))
		}
		for range o.count {
			out.Requests = append(out.Requests, run.request(ctx))
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		log.Printf("%v", err)
		return 1
	}
	fmt.Fprintln(stdout, string(b))
	return 0
}

func uriSANsOr(c *x509.Certificate, def string) string {
	if u := uriSANs(c); len(u) > 0 {
		return strings.Join(u, ",")
	}
	return def
}
