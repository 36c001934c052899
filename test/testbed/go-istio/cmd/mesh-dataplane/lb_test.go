package main

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"istio.io/istio/pilot/pkg/networking/util"
)

func ep(ip string, weight uint32, health corev3.HealthStatus) *endpointv3.LbEndpoint {
	e := &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: util.BuildAddress(ip, 5678)}},
		HealthStatus:   health,
	}
	if weight > 0 {
		e.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return e
}

func locality(zone string, priority, weight uint32, eps ...*endpointv3.LbEndpoint) *endpointv3.LocalityLbEndpoints {
	l := &endpointv3.LocalityLbEndpoints{
		Locality:    &corev3.Locality{Region: "region1", Zone: zone},
		Priority:    priority,
		LbEndpoints: eps,
	}
	if weight > 0 {
		l.LoadBalancingWeight = wrapperspb.UInt32(weight)
	}
	return l
}

func cla(ls ...*endpointv3.LocalityLbEndpoints) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{ClusterName: "outbound|80||echo.default.svc.cluster.local", Endpoints: ls}
}

func edsCluster(localityWeighted bool, panic *float64) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 "outbound|80||echo.default.svc.cluster.local",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		CommonLbConfig:       &clusterv3.Cluster_CommonLbConfig{},
	}
	if localityWeighted {
		c.CommonLbConfig.LocalityConfigSpecifier = &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
			LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
		}
	}
	if panic != nil {
		c.CommonLbConfig.HealthyPanicThreshold = &xdstype.Percent{Value: *panic}
	}
	return c
}

// shares picks n times and returns each address's share.
func shares(t *testing.T, lb *loadBalancer, n int) map[string]float64 {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	counts := map[string]float64{}
	for range n {
		h, err := lb.pick(r.IntN)
		if err != nil {
			t.Fatal(err)
		}
		counts[h.Address]++
	}
	for k := range counts {
		counts[k] /= float64(n)
	}
	return counts
}

func near(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: shares %v, want %v", what, got, want)
		return
	}
	for k, w := range want {
		if math.Abs(got[k]-w) > 0.02 {
			t.Errorf("%s: shares %v, want %v", what, got, want)
			return
		}
	}
}

const (
	healthy   = corev3.HealthStatus_HEALTHY
	unhealthy = corev3.HealthStatus_UNHEALTHY
	draining  = corev3.HealthStatus_DRAINING
	unknown   = corev3.HealthStatus_UNKNOWN
)

func TestLBEndpointWeights(t *testing.T) {
	// Without locality weighted LB, localities do not matter: endpoint weights do.
	lb := newLoadBalancer(edsCluster(false, nil), cla(
		locality("a", 0, 100, ep("10.0.0.1", 1, healthy)),
		locality("b", 0, 1, ep("10.0.0.2", 3, unknown), ep("10.0.0.3", 0, draining)),
	))
	if !reflect.DeepEqual(lb.healthyLoad, []uint32{100}) || lb.panic[0] {
		t.Errorf("loads %v panic %v", lb.healthyLoad, lb.panic)
	}
	near(t, "weights", shares(t, lb, 20000), map[string]float64{"10.0.0.1": 0.25, "10.0.0.2": 0.75})
}

func TestLBLocalityWeights(t *testing.T) {
	lb := newLoadBalancer(edsCluster(true, nil), cla(
		locality("a", 0, 1, ep("10.0.0.1", 5, healthy)),
		locality("b", 0, 3, ep("10.0.0.2", 1, healthy), ep("10.0.0.3", 1, healthy)),
	))
	near(t, "locality weights", shares(t, lb, 20000), map[string]float64{"10.0.0.1": 0.25, "10.0.0.2": 0.375, "10.0.0.3": 0.375})

	// Locality b at 1 of 3 healthy: availability min(1, 1.4 × 1/3) = 0.4667, weight 3 → 1.4 vs 1.
	lb = newLoadBalancer(edsCluster(true, nil), cla(
		locality("a", 0, 1, ep("10.0.0.1", 1, healthy)),
		locality("b", 0, 3, ep("10.0.0.2", 1, healthy), ep("10.0.0.3", 1, unhealthy), ep("10.0.0.4", 1, unhealthy)),
	))
	near(t, "locality availability", shares(t, lb, 20000), map[string]float64{"10.0.0.1": 1 / 2.4, "10.0.0.2": 1.4 / 2.4})
}

func TestLBPriorities(t *testing.T) {
	// P0 fully healthy takes everything.
	lb := newLoadBalancer(edsCluster(false, nil), cla(
		locality("a", 0, 0, ep("10.0.0.1", 1, healthy)),
		locality("b", 1, 0, ep("10.0.1.1", 1, healthy)),
	))
	near(t, "P0 healthy", shares(t, lb, 1000), map[string]float64{"10.0.0.1": 1})

	// P0 half healthy: health min(100, 1.4 × 50) = 70%, the rest spills to P1.
	lb = newLoadBalancer(edsCluster(false, nil), cla(
		locality("a", 0, 0, ep("10.0.0.1", 1, healthy), ep("10.0.0.2", 1, unhealthy)),
		locality("b", 1, 0, ep("10.0.1.1", 1, healthy)),
	))
	if !reflect.DeepEqual(lb.healthyLoad, []uint32{70, 30}) || lb.panic[0] || lb.panic[1] {
		t.Errorf("loads %v panic %v", lb.healthyLoad, lb.panic)
	}
	near(t, "spill-over", shares(t, lb, 20000), map[string]float64{"10.0.0.1": 0.7, "10.0.1.1": 0.3})

	// P0 without healthy endpoints: all to P1. Priorities may skip levels.
	lb = newLoadBalancer(edsCluster(false, nil), cla(
		locality("a", 0, 0, ep("10.0.0.1", 1, unhealthy)),
		locality("b", 2, 0, ep("10.0.2.1", 1, healthy)),
	))
	if !reflect.DeepEqual(lb.healthyLoad, []uint32{0, 0, 100}) {
		t.Errorf("loads %v", lb.healthyLoad)
	}
	near(t, "failover", shares(t, lb, 1000), map[string]float64{"10.0.2.1": 1})
}

func TestLBPanic(t *testing.T) {
	// 1 of 3 healthy is below the default 50% panic threshold: Envoy balances over all hosts.
	c := cla(locality("a", 0, 0, ep("10.0.0.1", 1, healthy), ep("10.0.0.2", 1, unhealthy), ep("10.0.0.3", 1, draining)))
	lb := newLoadBalancer(edsCluster(false, nil), c)
	if !lb.panic[0] {
		t.Errorf("not in panic: loads %v", lb.healthyLoad)
	}
	near(t, "panic", shares(t, lb, 30000), map[string]float64{"10.0.0.1": 1.0 / 3, "10.0.0.2": 1.0 / 3, "10.0.0.3": 1.0 / 3})

	// Istio sets the threshold to 0 for services publishing unready endpoints: only healthy ones.
	zero := 0.0
	near(t, "panic disabled", shares(t, newLoadBalancer(edsCluster(false, &zero), c), 1000), map[string]float64{"10.0.0.1": 1})

	// Nothing healthy, panic disabled: no host.
	none := cla(locality("a", 0, 0, ep("10.0.0.2", 1, unhealthy)))
	if _, err := newLoadBalancer(edsCluster(false, &zero), none).pick(rand.IntN); err != errNoHost {
		t.Errorf("err = %v", err)
	}
	// Nothing healthy with the default threshold: total panic, by host count over priorities.
	lb = newLoadBalancer(edsCluster(false, nil), cla(
		locality("a", 0, 0, ep("10.0.0.2", 1, unhealthy)),
		locality("b", 1, 0, ep("10.0.1.2", 1, draining), ep("10.0.1.3", 1, unhealthy), ep("10.0.1.4", 1, unhealthy)),
	))
	if !reflect.DeepEqual(lb.healthyLoad, []uint32{25, 75}) {
		t.Errorf("total panic loads %v", lb.healthyLoad)
	}
	// No endpoints at all.
	if _, err := newLoadBalancer(edsCluster(false, nil), cla()).pick(rand.IntN); err != errNoHost {
		t.Errorf("empty: err = %v", err)
	}
	if _, err := newLoadBalancer(edsCluster(false, nil), nil).pick(rand.IntN); err != errNoHost {
		t.Errorf("nil: err = %v", err)
	}
}
