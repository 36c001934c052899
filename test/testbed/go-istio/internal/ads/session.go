// Package ads subscribes to istiod over delta ADS with Istio's own client (pkg/adsc/delta.go), the
// protocol pilot-agent uses by default (ISTIO_DELTA_XDS, pilot/pkg/features/experimental.go), and
// keeps what istiod sends: CDS, optionally LDS, and EDS for the clusters CDS names, subscribed to
// once the CDS response is handled, as Envoy does.
package ads

import (
	"context"
	"fmt"
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

	v3 "istio.io/istio/pilot/pkg/xds/v3"
	"istio.io/istio/pkg/adsc"

	"tailmesh.dev/testbed-istio/internal/xdsnode"
)

// Config says whom to ask for what.
type Config struct {
	// Address is istiod's plaintext xDS address, host:15010.
	Address string
	// ClientName names the client in Istio's debug logs.
	ClientName string
	Node       *xdsnode.Node
	// Namespace, Pod and IP are the node's pod (adsc builds its node from them and Node).
	Namespace, Pod, IP string
	// WatchListeners also subscribes to every listener (LDS), as a gateway's Envoy does.
	WatchListeners bool
	// WantEDS selects the EDS clusters (by CDS name) whose endpoints to subscribe to; nil: all.
	WantEDS func(cluster string) bool
}

// Snapshot is what istiod sent: every CDS cluster and listener, and the endpoints of the EDS
// clusters subscribed to, keyed by name (endpoints by their EDS service name, see EDSName).
type Snapshot struct {
	Clusters  map[string]*clusterv3.Cluster
	Listeners map[string]*listenerv3.Listener
	Endpoints map[string]*endpointv3.ClusterLoadAssignment
}

// Session is one ADS stream to istiod. It does not reconnect: when the stream ends, Done is
// closed and Err says why; a caller that wants to stay subscribed starts a new Session, which
// re-subscribes to everything (adsc's own reconnect re-sends only the initial watches, not the
// EDS subscriptions that CDS added).
type Session struct {
	cfg      Config
	mu       sync.Mutex
	snap     Snapshot
	handled  map[string]bool
	current  string
	answered bool
	err      error
	changed  chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
}

// Start connects to istiod and subscribes; it returns at once.
func Start(ctx context.Context, cfg Config) *Session {
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{
		cfg: cfg,
		snap: Snapshot{
			Clusters:  map[string]*clusterv3.Cluster{},
			Listeners: map[string]*listenerv3.Listener{},
			Endpoints: map[string]*endpointv3.ClusterLoadAssignment{},
		},
		handled: map[string]bool{},
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
		cancel:  cancel,
	}
	n := cfg.Node
	acfg := &adsc.DeltaADSConfig{Config: adsc.Config{
		ClientName: cfg.ClientName,
		Namespace:  cfg.Namespace,
		Workload:   cfg.Pod,
		NodeType:   n.Type,
		IP:         cfg.IP,
		Meta:       n.Metadata,
		Locality:   n.Locality,
		// Own dial options replace adsc's insecure default (pkg/adsc/adsc.go dialWithConfig), so
		// plaintext is asked for explicitly: istiod's 15010 port is plaintext.
		GrpcOpts: []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStreamInterceptor(s.intercept),
		},
	}}
	opts := []adsc.Option{
		adsc.Register(s.onCluster),
		adsc.Register(s.onListener),
		adsc.Register(s.onEndpoints),
		adsc.Watch[*clusterv3.Cluster]("*"),
	}
	if cfg.WatchListeners {
		opts = append(opts, adsc.Watch[*listenerv3.Listener]("*"))
	}
	client := adsc.NewDelta(cfg.Address, acfg, opts...)
	// NewDelta defaults to reconnecting forever; a Session ends with its stream instead.
	acfg.BackoffPolicy = nil
	go func() {
		client.Run(ctx)
		s.mu.Lock()
		if s.err == nil {
			s.err = context.Cause(ctx)
			if s.err == nil {
				s.err = fmt.Errorf("the xDS client stopped")
			}
		}
		s.mu.Unlock()
		close(s.done)
		s.notify()
	}()
	return s
}

// Close ends the stream and waits for the client to stop.
func (s *Session) Close() {
	s.cancel()
	<-s.done
}

// Changed is signalled (coalesced) whenever istiod's answer or the stream's state changes.
func (s *Session) Changed() <-chan struct{} { return s.changed }

// Done is closed when the stream has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// View calls f with the snapshot, under the session's lock: f must not keep it or block.
func (s *Session) View(f func(*Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.snap)
}

// Err is why the stream failed or ended, nil while it is up.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Ready reports whether the CDS response (and the LDS one, if watched) has been handled.
func (s *Session) Ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ready()
}

// Complete reports whether the snapshot holds istiod's full answer: Ready, and endpoints for
// every wanted EDS cluster. istiod answers every subscribed EDS name, with an empty
// ClusterLoadAssignment when a cluster has no endpoints (pilot/pkg/xds/eds.go buildEndpoints).
func (s *Session) Complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.complete()
}

func (s *Session) ready() bool {
	return s.handled[v3.ClusterType] && (!s.cfg.WatchListeners || s.handled[v3.ListenerType])
}

func (s *Session) complete() bool {
	if !s.ready() {
		return false
	}
	got, want := s.edsProgress()
	return got == want
}

func (s *Session) wants(cl *clusterv3.Cluster) bool {
	return cl.GetType() == clusterv3.Cluster_EDS && (s.cfg.WantEDS == nil || s.cfg.WantEDS(cl.GetName()))
}

func (s *Session) edsProgress() (got, want int) {
	for _, cl := range s.snap.Clusters {
		if !s.wants(cl) {
			continue
		}
		want++
		if _, ok := s.snap.Endpoints[EDSName(cl)]; ok {
			got++
		}
	}
	return got, want
}

// Progress describes how much of the answer has arrived, for error messages.
func (s *Session) Progress() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, want := s.edsProgress()
	p := fmt.Sprintf("CDS handled: %t", s.handled[v3.ClusterType])
	if s.cfg.WatchListeners {
		p += fmt.Sprintf(", LDS handled: %t", s.handled[v3.ListenerType])
	}
	return p + fmt.Sprintf(", EDS answered: %d of %d", got, want)
}

// UnreachableError says the stream failed before istiod answered anything, with gRPC's
// Unavailable: nothing listened, the connection was reset, or no endpoint was ready. Envoy
// reconnects after such a failure with a backoff (envoy source/common/config/grpc_stream.h); a
// caller that stands in for it may do the same.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string { return fmt.Sprintf("cannot reach istiod at %s: %v", e.Addr, e.Err) }
func (e *UnreachableError) Unwrap() error { return e.Err }

// Wait waits until done(s) holds (Complete if done is nil), the stream fails, or timeout passes,
// and says which in an error.
func (s *Session) Wait(ctx context.Context, timeout time.Duration, done func(*Session) bool) error {
	if done == nil {
		done = (*Session).Complete
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addr := s.cfg.Address
	for {
		if done(s) {
			return nil
		}
		s.mu.Lock()
		err, answered := s.err, s.answered
		s.mu.Unlock()
		select {
		case <-s.done:
			if done(s) {
				return nil
			}
			switch {
			case err != nil && !answered && status.Code(err) == codes.Unavailable:
				return &UnreachableError{Addr: addr, Err: err}
			case err != nil && err != context.Canceled:
				return fmt.Errorf("xDS stream with istiod at %s failed: %v", addr, err)
			}
			return fmt.Errorf("the xDS client for istiod at %s stopped before istiod answered (--verbose shows why)", addr)
		default:
		}
		if err != nil {
			if !answered && status.Code(err) == codes.Unavailable {
				return &UnreachableError{Addr: addr, Err: err}
			}
			return fmt.Errorf("xDS stream with istiod at %s failed: %v", addr, err)
		}
		select {
		case <-s.changed:
		case <-s.done:
		case <-ctx.Done():
			if done(s) {
				return nil
			}
			return fmt.Errorf("istiod at %s did not answer within %s (%s)", addr, timeout, s.Progress())
		}
	}
}

func (s *Session) notify() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *Session) onCluster(ctx adsc.HandlerContext, name, _ string, cl *clusterv3.Cluster, ev adsc.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if ev == adsc.EventDelete {
		delete(s.snap.Clusters, name)
		return
	}
	s.snap.Clusters[name] = cl
	if s.wants(cl) {
		// The delta client subscribes to these once the CDS response is handled, as Envoy does.
		ctx.RegisterDependency(v3.EndpointType, EDSName(cl))
	}
}

func (s *Session) onListener(_ adsc.HandlerContext, name, _ string, l *listenerv3.Listener, ev adsc.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if ev == adsc.EventDelete {
		delete(s.snap.Listeners, name)
		return
	}
	s.snap.Listeners[name] = l
}

func (s *Session) onEndpoints(_ adsc.HandlerContext, name, _ string, cla *endpointv3.ClusterLoadAssignment, ev adsc.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if ev == adsc.EventDelete {
		delete(s.snap.Endpoints, name)
		return
	}
	s.snap.Endpoints[name] = cla
}

// intercept wraps the ADS stream the delta client opens. The client handles a response fully
// (handlers, ACK, new subscriptions) before it asks the stream for the next one
// (pkg/adsc/delta.go handleRecv), so a RecvMsg call marks the previous response as handled.
// It also records the stream's error, which the client only logs.
func (s *Session) intercept(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string,
	streamer grpc.Streamer, opts ...grpc.CallOption,
) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		s.fail(err)
		return nil, err
	}
	return &observedStream{ClientStream: cs, s: s, nonces: map[string]string{}}, nil
}

type observedStream struct {
	grpc.ClientStream
	s *Session
	// nonces is the last nonce received per type URL (only the client's goroutine touches it:
	// adsc sends from the goroutine that receives).
	nonces map[string]string
}

// SendMsg gives a subscription change the nonce of the last response of its own type, as Envoy
// does. The delta client sends the EDS subscriptions that a CDS response adds with the CDS
// response's nonce (pkg/adsc/delta.go update); istiod takes a request whose nonce is not the one
// it last sent for that type as stale and drops it (pilot/pkg/xds/delta.go shouldRespondDelta),
// so a cluster that appears after the first EDS answer would never get its endpoints.
func (o *observedStream) SendMsg(m any) error {
	if r, ok := m.(*discovery.DeltaDiscoveryRequest); ok && r.GetResponseNonce() != "" {
		if last := o.nonces[r.GetTypeUrl()]; last != r.GetResponseNonce() {
			r.ResponseNonce = last
		}
	}
	return o.ClientStream.SendMsg(m)
}

func (o *observedStream) RecvMsg(m any) error {
	s := o.s
	s.mu.Lock()
	if s.current != "" {
		s.handled[s.current] = true
		s.current = ""
		s.notify()
	}
	s.mu.Unlock()
	err := o.ClientStream.RecvMsg(m)
	if err != nil {
		s.fail(err)
		return err
	}
	if r, ok := m.(*discovery.DeltaDiscoveryResponse); ok {
		o.nonces[r.GetTypeUrl()] = r.GetNonce()
		s.mu.Lock()
		s.current = r.GetTypeUrl()
		s.answered = true
		s.mu.Unlock()
	}
	return nil
}

func (s *Session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.notify()
}

// EDSName is the name a cluster's endpoints are requested and answered by.
func EDSName(cl *clusterv3.Cluster) string {
	if n := cl.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return cl.GetName()
}

// ToAddress renders an endpoint or listener address. Besides IP sockets, istiod uses Envoy
// internal addresses for HBONE tunnels (pilot/pkg/networking/util BuildInternalAddressWithIdentifier).
func ToAddress(a *corev3.Address) (string, uint32) {
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
