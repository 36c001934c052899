package ads

import (
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	v3 "istio.io/istio/pilot/pkg/xds/v3"
)

// fakeStream answers RecvMsg with the queued responses and records what is sent.
type fakeStream struct {
	grpc.ClientStream
	responses []*discovery.DeltaDiscoveryResponse
	sent      []*discovery.DeltaDiscoveryRequest
}

func (f *fakeStream) RecvMsg(m any) error {
	next := f.responses[0]
	f.responses = f.responses[1:]
	proto.Merge(m.(*discovery.DeltaDiscoveryResponse), next)
	return nil
}

func (f *fakeStream) SendMsg(m any) error {
	f.sent = append(f.sent, proto.Clone(m.(*discovery.DeltaDiscoveryRequest)).(*discovery.DeltaDiscoveryRequest))
	return nil
}

// The delta client subscribes to a cluster's endpoints with the nonce of the CDS response that
// brought the cluster; istiod drops a request whose nonce is not the last it sent for that type,
// so the stream gives such a request the last EDS nonce (none before the first EDS answer).
func TestSubscriptionsCarryTheNonceOfTheirOwnType(t *testing.T) {
	s := &Session{changed: make(chan struct{}, 1), handled: map[string]bool{}}
	fake := &fakeStream{responses: []*discovery.DeltaDiscoveryResponse{
		{TypeUrl: v3.ClusterType, Nonce: "cds-1"},
		{TypeUrl: v3.EndpointType, Nonce: "eds-1"},
		{TypeUrl: v3.ClusterType, Nonce: "cds-2"},
	}}
	o := &observedStream{ClientStream: fake, s: s, nonces: map[string]string{}}
	recv := func() {
		if err := o.RecvMsg(&discovery.DeltaDiscoveryResponse{}); err != nil {
			t.Fatal(err)
		}
	}
	send := func(typeURL, nonce string) {
		if err := o.SendMsg(&discovery.DeltaDiscoveryRequest{TypeUrl: typeURL, ResponseNonce: nonce, ResourceNamesSubscribe: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
	}

	recv()
	send(v3.ClusterType, "cds-1")  // the CDS ACK keeps its nonce
	send(v3.EndpointType, "cds-1") // first EDS subscription: no EDS nonce yet
	recv()
	recv()
	send(v3.EndpointType, "cds-2") // a later subscription: the last EDS nonce

	got := []string{}
	for _, r := range fake.sent {
		got = append(got, r.GetTypeUrl()+"="+r.GetResponseNonce())
	}
	want := []string{v3.ClusterType + "=cds-1", v3.EndpointType + "=", v3.EndpointType + "=eds-1"}
	if len(got) != len(want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: sent %s, want %s", i, got[i], want[i])
		}
	}
}
