package main

import (
	"context"
	"sync/atomic"
	"time"

	"tailmesh.dev/testbed-istio/internal/ads"
	"tailmesh.dev/testbed-istio/internal/xdsnode"
)

// adsConfig is the subscription a proxy with these flags makes (internal/ads; delta ADS through
// Istio's pkg/adsc, node identity as pilot-agent builds it).
func adsConfig(o *options, n *xdsnode.Node, listeners bool, wantEDS func(string) bool) ads.Config {
	return ads.Config{
		Address:        o.xds,
		ClientName:     "mesh-dataplane-" + o.cmd,
		Node:           n,
		Namespace:      o.namespace,
		Pod:            o.pod,
		IP:             o.podIP,
		WatchListeners: listeners,
		WantEDS:        wantEDS,
	}
}

// adsLoop stays subscribed to istiod as Envoy does: when the stream ends it reconnects with
// back-off and subscribes afresh. Until the new stream's answer is ready, the last one stays in
// use, as Envoy keeps its config while istiod is away.
type adsLoop struct {
	cfg ads.Config
	// ready says when a stream's answer is complete enough to use.
	ready      func(*ads.Session) bool
	log        *logger
	cur        atomic.Pointer[ads.Session]
	minBackoff time.Duration
	maxBackoff time.Duration
}

func newADSLoop(cfg ads.Config, ready func(*ads.Session) bool, log *logger) *adsLoop {
	return &adsLoop{cfg: cfg, ready: ready, log: log, minBackoff: time.Second, maxBackoff: 30 * time.Second}
}

// View calls f with the current answer; false when none has arrived yet.
func (l *adsLoop) View(f func(*ads.Snapshot)) bool {
	s := l.cur.Load()
	if s == nil {
		return false
	}
	s.View(f)
	return true
}

// run keeps a session until ctx ends, calling onReady each time a new stream's answer is ready.
func (l *adsLoop) run(ctx context.Context, onReady func()) {
	backoff := l.minBackoff
	for ctx.Err() == nil {
		s := ads.Start(ctx, l.cfg)
		ready := false
	stream:
		for {
			select {
			case <-s.Changed():
				if !ready && l.ready(s) {
					ready = true
					backoff = l.minBackoff
					l.cur.Store(s)
					l.log.Printf("istiod at %s: %s", l.cfg.Address, s.Progress())
					if onReady != nil {
						onReady()
					}
				}
			case <-s.Done():
				break stream
			case <-ctx.Done():
				s.Close()
				return
			}
		}
		l.log.Printf("xDS stream with istiod at %s ended: %v; reconnecting in %s", l.cfg.Address, s.Err(), backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !ready {
			backoff = min(2*backoff, l.maxBackoff)
		}
	}
}
