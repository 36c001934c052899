package main

import (
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Passive outlier detection as Envoy runs it for a cluster with outlier_detection (Istio sets it
// from a DestinationRule's trafficPolicy.outlierDetection, pilot/pkg/networking/core/
// cluster_traffic_policy.go applyOutlierDetection), following Envoy's
// source/common/upstream/outlier_detection_impl.cc and
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/outlier:
//
//   - each result is charged to the host it went to (DetectorHostMonitorImpl::putResult): with
//     split_external_local_origin_errors off (the default), a connect failure counts as a 503
//     and a timeout as a 504 (resultToHttpCode); a response below 500 resets the counters;
//   - consecutive_5xx (default 5) errors in a row eject the host at once, when
//     enforcing_consecutive_5xx (default 100 %) allows; 502, 503 and 504 also count toward
//     consecutive_gateway_failure (default 5, enforced at 0 % unless set); with the split on,
//     local-origin failures count toward consecutive_local_origin_failure instead;
//   - ejectHost: an ejection happens only while (ejected + 1) / hosts stays within
//     max_ejection_percent (default 10 %), or when nothing is ejected and always_eject_one_host
//     is set, so the default ejects nothing in a cluster of fewer than ten hosts;
//   - an ejected host is unhealthy for the load balancer (FAILED_OUTLIER_CHECK) until
//     base_ejection_time (default 30 s) times its ejection count, capped by max_ejection_time
//     (default 300 s), has passed (checkHostForUneject).
//
// Simplifications: un-ejection is checked before each pick instead of on the interval timer, the
// back-off counts ejections instead of decaying, and the success-rate and failure-percentage
// detectors (off unless their enforcing fields are set; Istio sets neither) are not run.

// outcome is what a request's result tells the detector about its host.
type outcome struct {
	// code is the HTTP status, or 0 for a local-origin result.
	code int
	// connectFailed and timedOut are the local-origin failures; requestFailed is a reset after
	// the connection was up (ExtOriginRequestFailed). None of them, with code 0, charges nothing.
	connectFailed, timedOut, requestFailed bool
}

type hostMonitor struct {
	consecutive5xx, consecutiveGateway, consecutiveLocal uint32
	ejected                                              bool
	ejections                                            int
	ejectedAt                                            time.Time
}

type outlierDetector struct {
	cfg      *clusterv3.OutlierDetection
	monitors map[*lbHost]*hostMonitor
	active   int
	intn     func(int) int
	now      func() time.Time
}

// newOutlierDetector returns nil for a cluster without outlier_detection: Envoy then charges
// nothing and ejects nothing.
func newOutlierDetector(cl *clusterv3.Cluster, hosts []*lbHost, intn func(int) int, now func() time.Time) *outlierDetector {
	cfg := cl.GetOutlierDetection()
	if cfg == nil {
		return nil
	}
	d := &outlierDetector{cfg: cfg, monitors: map[*lbHost]*hostMonitor{}, intn: intn, now: now}
	for _, h := range hosts {
		d.monitors[h] = &hostMonitor{}
	}
	return d
}

// u32 is a UInt32Value's value, or def when the field is unset.
func u32(v *wrapperspb.UInt32Value, def uint32) uint32 {
	if v == nil {
		return def
	}
	return v.GetValue()
}

func (d *outlierDetector) threshold5xx() uint32 {
	return u32(d.cfg.GetConsecutive_5Xx(), 5)
}
func (d *outlierDetector) thresholdGateway() uint32 {
	return u32(d.cfg.GetConsecutiveGatewayFailure(), 5)
}
func (d *outlierDetector) thresholdLocal() uint32 {
	return u32(d.cfg.GetConsecutiveLocalOriginFailure(), 5)
}

// enforced is runtime featureEnabled(key, pct): true with probability pct %.
func (d *outlierDetector) enforced(pct uint32) bool {
	return pct >= 100 || (pct > 0 && uint32(d.intn(100)) < pct)
}

// charge records one result for h and returns whether it ejected h.
func (d *outlierDetector) charge(h *lbHost, o outcome) bool {
	if d == nil || d.monitors[h] == nil {
		return false
	}
	m := d.monitors[h]
	code := o.code
	if o.requestFailed {
		// resultToHttpCode without the split; putResultWithLocalExternalSplit charges a 503.
		code = 500
		if d.cfg.GetSplitExternalLocalOriginErrors() {
			code = 503
		}
	}
	if code == 0 {
		local := o.connectFailed || o.timedOut
		if d.cfg.GetSplitExternalLocalOriginErrors() {
			// putResultWithLocalExternalSplit: local-origin results have a counter of their own.
			if !local {
				m.consecutiveLocal = 0
				return false
			}
			m.consecutiveLocal++
			if m.consecutiveLocal == d.thresholdLocal() {
				m.consecutiveLocal = 0
				return d.eject(h, u32(d.cfg.GetEnforcingConsecutiveLocalOriginFailure(), 100))
			}
			return false
		}
		switch {
		case o.connectFailed:
			code = 503
		case o.timedOut:
			code = 504
		default:
			return false
		}
	}
	// putHttpResponseCode.
	if code < 500 {
		m.consecutive5xx, m.consecutiveGateway = 0, 0
		return false
	}
	ejected := false
	if code == 502 || code == 503 || code == 504 {
		m.consecutiveGateway++
		if m.consecutiveGateway == d.thresholdGateway() {
			m.consecutiveGateway = 0
			ejected = d.eject(h, u32(d.cfg.GetEnforcingConsecutiveGatewayFailure(), 0))
		}
	} else {
		m.consecutiveGateway = 0
	}
	m.consecutive5xx++
	if m.consecutive5xx == d.threshold5xx() {
		m.consecutive5xx = 0
		ejected = d.eject(h, u32(d.cfg.GetEnforcingConsecutive_5Xx(), 100)) || ejected
	}
	return ejected
}

// eject is onConsecutiveErrorWorker then ejectHost.
func (d *outlierDetector) eject(h *lbHost, enforcing uint32) bool {
	m := d.monitors[h]
	if m.ejected {
		return false
	}
	maxPercent := min(100, u32(d.cfg.GetMaxEjectionPercent(), 10))
	percent := 100 * float64(d.active+1) / float64(len(d.monitors))
	alwaysOne := d.cfg.GetAlwaysEjectOneHost().GetValue() && d.active == 0
	if percent > float64(maxPercent) && !alwaysOne {
		return false
	}
	if !d.enforced(enforcing) {
		return false
	}
	m.ejected, m.ejections, m.ejectedAt = true, m.ejections+1, d.now()
	d.active++
	h.Ejected = true
	return true
}

// unejectDue returns the hosts whose ejection time has passed to service; true when any did.
func (d *outlierDetector) unejectDue() bool {
	if d == nil {
		return false
	}
	base := 30 * time.Second
	if b := d.cfg.GetBaseEjectionTime(); b != nil {
		base = b.AsDuration()
	}
	limit := 300 * time.Second
	if l := d.cfg.GetMaxEjectionTime(); l != nil {
		limit = l.AsDuration()
	}
	changed := false
	for h, m := range d.monitors {
		if m.ejected && d.now().Sub(m.ejectedAt) >= min(base*time.Duration(m.ejections), max(base, limit)) {
			m.ejected, m.consecutive5xx, m.consecutiveGateway, m.consecutiveLocal = false, 0, 0, 0
			d.active--
			h.Ejected = false
			changed = true
		}
	}
	return changed
}
