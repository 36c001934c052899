package main

import (
	"errors"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"tailmesh.dev/testbed-istio/internal/ads"
)

// Load balancing as Envoy does it for the clusters istiod sends, following Envoy's
// source/extensions/load_balancing_policies/common/load_balancer_impl.cc (LoadBalancerBase,
// ZoneAwareLoadBalancerBase), source/common/upstream/upstream_impl.cc
// (HostSetImpl::effectiveLocalityWeight) and the overview at
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/load_balancing/overview
//
//   - priority levels: each level's health is its share of healthy hosts times the
//     overprovisioning factor (1.4 unless the ClusterLoadAssignment says otherwise), capped at
//     100%; load goes to the highest-priority levels first and spills over to lower ones as
//     health drops (recalculatePerPriorityState, distributeLoad);
//   - panic: a level whose healthy share is below the cluster's healthy_panic_threshold (50%
//     unless set; Istio sets 0 for services that publish unready endpoints,
//     pilot/pkg/networking/core/cluster_traffic_policy.go) balances over all its hosts
//     (recalculatePerPriorityPanic, recalculateLoadInTotalPanic);
//   - locality weighted LB (common_lb_config.locality_weighted_lb_config, which Istio sets for
//     locality load balancing, pilot/pkg/networking/core/loadbalancer/loadbalancer.go): a
//     locality is chosen by its load_balancing_weight times its availability
//     (HostSetImpl::effectiveLocalityWeight), then a host in it;
//   - within the chosen set, hosts by load_balancing_weight.
//
// Simplifications: Envoy's deterministic schedulers (EDF for localities and weighted round
// robin, power-of-two-choices for Istio's default LEAST_REQUEST) are replaced by weighted random
// choice, which has the same proportions for sequential requests; the degraded state is kept,
// there is no active health checking or zone-aware routing (Istio configures no local cluster for
// it); passive outlier detection is in outlier.go.

type hostHealth int

const (
	hostHealthy hostHealth = iota
	hostDegraded
	hostUnhealthy
)

// coarseHealth maps EDS health as Envoy does
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/core/v3/health_check.proto#enum-config-core-v3-healthstatus):
// UNKNOWN and HEALTHY are healthy, DEGRADED is degraded, and UNHEALTHY, DRAINING and TIMEOUT
// fail EDS health.
func coarseHealth(s corev3.HealthStatus) hostHealth {
	switch s {
	case corev3.HealthStatus_UNKNOWN, corev3.HealthStatus_HEALTHY:
		return hostHealthy
	case corev3.HealthStatus_DEGRADED:
		return hostDegraded
	}
	return hostUnhealthy
}

// lbHost is one endpoint of a ClusterLoadAssignment.
type lbHost struct {
	Address        string
	Port           uint32
	Weight         uint32
	Health         hostHealth
	Priority       uint32
	Locality       *corev3.Locality
	LocalityWeight uint32
	Endpoint       *endpointv3.LbEndpoint
	// Ejected by outlier detection (outlier.go): unhealthy whatever EDS says, as Envoy's
	// FAILED_OUTLIER_CHECK health flag makes it.
	Ejected bool
}

// health is the host's health for load balancing.
func (h *lbHost) health() hostHealth {
	if h.Ejected {
		return hostUnhealthy
	}
	return h.Health
}

type localityGroup struct {
	weight uint32
	hosts  []*lbHost
}

type priorityLevel struct {
	hosts      []*lbHost
	localities []*localityGroup
}

func (p *priorityLevel) count(h hostHealth) int {
	n := 0
	for _, x := range p.hosts {
		if x.health() == h {
			n++
		}
	}
	return n
}

// loadBalancer picks hosts of one cluster.
type loadBalancer struct {
	hosts            []*lbHost
	levels           []*priorityLevel
	localityWeighted bool
	overprovisioning uint32  // percent
	panicThreshold   float64 // percent
	healthyLoad      []uint32
	degradedLoad     []uint32
	panic            []bool
}

var errNoHost = errors.New("no healthy endpoint")

func newLoadBalancer(cl *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) *loadBalancer {
	lb := &loadBalancer{
		localityWeighted: cl.GetCommonLbConfig().GetLocalityWeightedLbConfig() != nil,
		overprovisioning: 140,
		panicThreshold:   50,
	}
	if f := cla.GetPolicy().GetOverprovisioningFactor(); f != nil {
		lb.overprovisioning = f.GetValue()
	}
	if t := cl.GetCommonLbConfig().GetHealthyPanicThreshold(); t != nil {
		lb.panicThreshold = t.GetValue()
	}
	for _, lle := range cla.GetEndpoints() {
		p := lle.GetPriority()
		for uint32(len(lb.levels)) <= p {
			lb.levels = append(lb.levels, &priorityLevel{})
		}
		level := lb.levels[p]
		group := &localityGroup{weight: lle.GetLoadBalancingWeight().GetValue()}
		for _, e := range lle.GetLbEndpoints() {
			addr, port := ads.ToAddress(e.GetEndpoint().GetAddress())
			h := &lbHost{
				Address:        addr,
				Port:           port,
				Weight:         1,
				Health:         coarseHealth(e.GetHealthStatus()),
				Priority:       p,
				Locality:       lle.GetLocality(),
				LocalityWeight: group.weight,
				Endpoint:       e,
			}
			if w := e.GetLoadBalancingWeight(); w != nil && w.GetValue() > 0 {
				h.Weight = w.GetValue()
			}
			group.hosts = append(group.hosts, h)
			level.hosts = append(level.hosts, h)
			lb.hosts = append(lb.hosts, h)
		}
		level.localities = append(level.localities, group)
	}
	lb.computeLoads()
	return lb
}

// computeLoads is recalculatePerPriorityState followed by recalculatePerPriorityPanic.
func (lb *loadBalancer) computeLoads() {
	n := len(lb.levels)
	lb.healthyLoad = make([]uint32, n)
	lb.degradedLoad = make([]uint32, n)
	lb.panic = make([]bool, n)
	if n == 0 {
		return
	}
	health := make([]uint32, n)
	degraded := make([]uint32, n)
	for i, level := range lb.levels {
		if total := uint32(len(level.hosts)); total > 0 {
			health[i] = min(100, lb.overprovisioning*uint32(level.count(hostHealthy))/total)
			degraded[i] = min(100, lb.overprovisioning*uint32(level.count(hostDegraded))/total)
		}
	}
	normTotal := uint32(0)
	for i := range health {
		normTotal += min(100, health[i]+degraded[i])
	}
	normTotal = min(normTotal, 100)
	if normTotal > 0 {
		firstHealthy, remaining := distributeLoad(lb.healthyLoad, health, 100, normTotal)
		firstDegraded, remaining := distributeLoad(lb.degradedLoad, degraded, remaining, normTotal)
		if remaining > 0 {
			if firstHealthy >= 0 {
				lb.healthyLoad[firstHealthy] += remaining
			} else {
				lb.degradedLoad[firstDegraded] += remaining
			}
		}
	}

	if lb.panicThreshold == 0 && normTotal == 0 {
		// Panic disabled and nothing available: all load to P0, where no host will be found.
		lb.healthyLoad[0] = 100
		return
	}
	allPanic := true
	for i, level := range lb.levels {
		lb.panic[i] = normTotal != 100 && lb.inPanic(level)
		allPanic = allPanic && lb.panic[i]
	}
	if allPanic {
		// recalculateLoadInTotalPanic: load by host count, whatever the health.
		total := uint32(len(lb.hosts))
		for i := range lb.healthyLoad {
			lb.healthyLoad[i], lb.degradedLoad[i] = 0, 0
		}
		if total == 0 {
			lb.healthyLoad[0] = 100
			return
		}
		left, first := uint32(100), -1
		for i, level := range lb.levels {
			if first < 0 && len(level.hosts) > 0 {
				first = i
			}
			lb.healthyLoad[i] = 100 * uint32(len(level.hosts)) / total
			left -= lb.healthyLoad[i]
		}
		lb.healthyLoad[first] += left
	}
}

func (lb *loadBalancer) inPanic(level *priorityLevel) bool {
	total := len(level.hosts)
	if total == 0 {
		return 0 < lb.panicThreshold
	}
	pct := 100 * float64(level.count(hostHealthy)+level.count(hostDegraded)) / float64(total)
	return pct < lb.panicThreshold
}

// distributeLoad gives each level as much of total as its availability allows, in priority order.
func distributeLoad(load, availability []uint32, total, normTotal uint32) (first int, remaining uint32) {
	first = -1
	for i := range availability {
		if first < 0 && availability[i] > 0 {
			first = i
		}
		load[i] = min(total, availability[i]*100/normTotal)
		total -= load[i]
	}
	return first, total
}

// choosePriority is LoadBalancerBase::choosePriority for hash in 1..100.
func (lb *loadBalancer) choosePriority(hash uint32) (int, hostHealth) {
	sum := uint32(0)
	for i, l := range lb.healthyLoad {
		sum += l
		if hash <= sum {
			return i, hostHealthy
		}
	}
	for i, l := range lb.degradedLoad {
		sum += l
		if hash <= sum {
			return i, hostDegraded
		}
	}
	return 0, hostHealthy
}

// pick chooses a host; intn(n) returns a random number in [0, n).
func (lb *loadBalancer) pick(intn func(int) int) (*lbHost, error) {
	if len(lb.levels) == 0 {
		return nil, errNoHost
	}
	p, avail := lb.choosePriority(uint32(intn(100)) + 1)
	level := lb.levels[p]
	var source []*lbHost
	switch {
	case lb.panic[p]:
		source = level.hosts
	case lb.localityWeighted:
		if g := lb.chooseLocality(level, avail, intn); g != nil {
			source = withHealth(g.hosts, avail)
		}
	}
	if source == nil && !lb.panic[p] {
		source = withHealth(level.hosts, avail)
	}
	if len(source) == 0 {
		return nil, errNoHost
	}
	return weightedHost(source, intn), nil
}

// chooseLocality weighs each locality by its weight times its availability
// (min(1, overprovisioning × eligible/hosts)), as HostSetImpl::effectiveLocalityWeight does.
func (lb *loadBalancer) chooseLocality(level *priorityLevel, avail hostHealth, intn func(int) int) *localityGroup {
	weights := make([]float64, len(level.localities))
	total := 0.0
	for i, g := range level.localities {
		if len(g.hosts) == 0 || g.weight == 0 {
			continue
		}
		ratio := float64(len(withHealth(g.hosts, avail))) / float64(len(g.hosts))
		weights[i] = float64(g.weight) * min(1, float64(lb.overprovisioning)/100*ratio)
		total += weights[i]
	}
	if total == 0 {
		return nil
	}
	// A uniform draw in [0, total) with 1e-6 resolution.
	const scale = 1_000_000
	r := float64(intn(scale)) / scale * total
	for i, w := range weights {
		if w == 0 {
			continue
		}
		if r < w {
			return level.localities[i]
		}
		r -= w
	}
	for i := len(weights) - 1; i >= 0; i-- {
		if weights[i] > 0 {
			return level.localities[i]
		}
	}
	return nil
}

func withHealth(hosts []*lbHost, h hostHealth) []*lbHost {
	var out []*lbHost
	for _, x := range hosts {
		if x.health() == h {
			out = append(out, x)
		}
	}
	return out
}

func weightedHost(hosts []*lbHost, intn func(int) int) *lbHost {
	total := 0
	for _, h := range hosts {
		total += int(h.Weight)
	}
	r := intn(total)
	for _, h := range hosts {
		r -= int(h.Weight)
		if r < 0 {
			return h
		}
	}
	return hosts[len(hosts)-1]
}
