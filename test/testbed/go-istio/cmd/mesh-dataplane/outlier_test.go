package main

import (
	"math/rand/v2"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The shape of the echo test: two local endpoints at priority 0 and the peer's gateway at
// priority 1, failover by locality with panic off (Istio's minHealthPercent default, 0).
func failoverCluster(od *clusterv3.OutlierDetection) (*clusterv3.Cluster, *loadBalancer) {
	zero := 0.0
	cl := edsCluster(true, &zero)
	cl.OutlierDetection = od
	lb := newLoadBalancer(cl, cla(
		locality("a", 0, 1, ep("10.0.0.1", 0, corev3.HealthStatus_HEALTHY), ep("10.0.0.2", 0, corev3.HealthStatus_HEALTHY)),
		locality("b", 1, 1, ep("100.64.0.9", 0, corev3.HealthStatus_HEALTHY)),
	))
	return cl, lb
}

// rnd is a seeded random source, so each run picks the same hosts.
func rnd() func(int) int { return rand.New(rand.NewPCG(7, 11)).IntN }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// chargeLocal sends requests as the client does, every one to a priority-0 host failing with a
// connect error, and returns how many were charged before the load left priority 0.
func chargeLocal(t *testing.T, lb *loadBalancer, d *outlierDetector, n int, intn func(int) int) (failed int, ejected []string) {
	t.Helper()
	for range n {
		h, err := lb.pick(intn)
		if err != nil {
			t.Fatalf("pick: %v", err)
		}
		if h.Priority != 0 {
			continue
		}
		failed++
		if d.charge(h, outcome{connectFailed: true}) {
			lb.computeLoads()
			ejected = append(ejected, h.Address)
		}
	}
	return failed, ejected
}

func TestOutlierRecipeRuleEjectsNothingInASmallCluster(t *testing.T) {
	// The recipe's rule sets consecutive errors only: max_ejection_percent stays Envoy's 10 %, and
	// one ejection of three hosts would be 33 %.
	cl, lb := failoverCluster(&clusterv3.OutlierDetection{Consecutive_5Xx: wrapperspb.UInt32(5)})
	c := &clock{t: time.Unix(0, 0)}
	d := newOutlierDetector(cl, lb.hosts, rnd(), c.now)
	failed, ejected := chargeLocal(t, lb, d, 40, rnd())
	if failed != 40 || len(ejected) != 0 {
		t.Fatalf("failed %d, ejected %v; want 40 failed at priority 0 and no ejection", failed, ejected)
	}
	// always_eject_one_host lets the first ejection through.
	cl.OutlierDetection.AlwaysEjectOneHost = wrapperspb.Bool(true)
	_, lb = failoverCluster(cl.OutlierDetection)
	d = newOutlierDetector(cl, lb.hosts, rnd(), c.now)
	_, ejected = chargeLocal(t, lb, d, 40, rnd())
	if len(ejected) != 1 {
		t.Fatalf("ejected %v; want exactly one host", ejected)
	}
}

func TestOutlierEjectsBothLocalHostsThenFailsOver(t *testing.T) {
	od := &clusterv3.OutlierDetection{
		Consecutive_5Xx:    wrapperspb.UInt32(5),
		MaxEjectionPercent: wrapperspb.UInt32(100),
		BaseEjectionTime:   durationpb.New(30 * time.Second),
	}
	cl, lb := failoverCluster(od)
	c := &clock{t: time.Unix(0, 0)}
	intn := rnd()
	d := newOutlierDetector(cl, lb.hosts, intn, c.now)
	failed, ejected := chargeLocal(t, lb, d, 30, intn)
	if len(ejected) != 2 || failed > 10 {
		t.Fatalf("failed %d, ejected %v; want both local hosts ejected after 10 failures at most", failed, ejected)
	}
	for range 20 {
		h, err := lb.pick(intn)
		if err != nil || h.Priority != 1 {
			t.Fatalf("picked %+v (%v) after both local hosts were ejected; want the priority-1 gateway", h, err)
		}
	}

	// Back after base_ejection_time × ejections; a success keeps them in.
	c.t = c.t.Add(29 * time.Second)
	if d.unejectDue() {
		t.Fatal("unejected before base_ejection_time")
	}
	c.t = c.t.Add(time.Second)
	if !d.unejectDue() {
		t.Fatal("not unejected after base_ejection_time")
	}
	lb.computeLoads()
	if h, _ := lb.pick(intn); h.Priority != 0 {
		t.Fatalf("picked priority %d after the local hosts came back; want 0", h.Priority)
	}
}

func TestOutlierSuccessResetsAndGatewayFailuresAreNotEnforcedByDefault(t *testing.T) {
	od := &clusterv3.OutlierDetection{MaxEjectionPercent: wrapperspb.UInt32(100)}
	cl, lb := failoverCluster(od)
	c := &clock{t: time.Unix(0, 0)}
	d := newOutlierDetector(cl, lb.hosts, rnd(), c.now)
	h := lb.hosts[0]
	for i := range 12 {
		// Four 503s then a 200, three times: never five in a row.
		code := 503
		if i%4 == 3 {
			code = 200
		}
		if d.charge(h, outcome{code: code}) {
			t.Fatalf("ejected at result %d; a success resets the count", i)
		}
	}
	// Five 500s in a row: consecutive_5xx (default 5, enforced at 100 %).
	for i := range 5 {
		if got := d.charge(h, outcome{code: 500}); got != (i == 4) {
			t.Fatalf("result %d ejected=%v", i, got)
		}
	}
	// A timeout counts as a 504 toward consecutive_5xx; the gateway-failure detector alone
	// (enforcing_consecutive_gateway_failure 0 % unless set) ejects nothing.
	h2 := lb.hosts[1]
	od.Consecutive_5Xx = wrapperspb.UInt32(100)
	for i := range 10 {
		if d.charge(h2, outcome{timedOut: true}) {
			t.Fatalf("ejected at timeout %d by the unenforced gateway-failure detector", i)
		}
	}
	od.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(100)
	for i := range 5 {
		if got := d.charge(h2, outcome{timedOut: true}); got != (i == 4) {
			t.Fatalf("enforced gateway failures: result %d ejected=%v", i, got)
		}
	}
}

func TestOutlierSplitCountsLocalOriginFailuresApart(t *testing.T) {
	od := &clusterv3.OutlierDetection{
		SplitExternalLocalOriginErrors: true,
		ConsecutiveLocalOriginFailure:  wrapperspb.UInt32(2),
		MaxEjectionPercent:             wrapperspb.UInt32(100),
	}
	cl, lb := failoverCluster(od)
	d := newOutlierDetector(cl, lb.hosts, rnd(), (&clock{}).now)
	h := lb.hosts[0]
	// Four 503 responses (external origin) do not touch the local-origin count.
	for range 4 {
		d.charge(h, outcome{code: 503})
	}
	if d.charge(h, outcome{connectFailed: true}) {
		t.Fatal("ejected after one local-origin failure; the threshold is 2")
	}
	if !d.charge(h, outcome{connectFailed: true}) {
		t.Fatal("not ejected after two local-origin failures")
	}
}

func TestNoOutlierDetectionWithoutConfig(t *testing.T) {
	cl, lb := failoverCluster(nil)
	if d := newOutlierDetector(cl, lb.hosts, rnd(), time.Now); d != nil {
		t.Fatal("a detector for a cluster without outlier_detection")
	}
	var d *outlierDetector
	if d.charge(lb.hosts[0], outcome{code: 503}) || d.unejectDue() {
		t.Fatal("a nil detector acted")
	}
}
