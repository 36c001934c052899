// Package xdsnode builds the xDS node identity (id, metadata, locality) a proxy presents to
// istiod, the way pilot-agent and Istio's injection templates build it. Shared by xds-probe and
// mesh-dataplane, so both are the same proxy in istiod's eyes.
package xdsnode

import (
	"encoding/json"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/constants"
	pm "istio.io/istio/pkg/model"
	"istio.io/istio/pkg/network"
	"istio.io/istio/pkg/version"
)

// Options describe the proxy's pod.
type Options struct {
	// Type is the proxy type: "sidecar" or "router" (pkg/model NodeType).
	Type         string
	IP           string
	Pod          string
	Namespace    string
	ClusterID    string
	Network      string
	MeshID       string
	WorkloadName string
	// Labels are the pod's labels (LABELS); empty means none.
	Labels map[string]string
	// Meta are extra metadata fields, as ISTIO_META_<KEY> env vars would set them; they override
	// the fields above.
	Meta map[string]string
	// Locality is region/zone[/subzone], or empty.
	Locality     string
	IstioVersion string
}

// Node is the identity presented to istiod.
type Node struct {
	ID       string
	Type     pm.NodeType
	Locality *corev3.Locality
	Metadata *structpb.Struct
}

// DefaultIstioVersion is what pilot-agent would report: the version stamped into the binary
// (pkg/bootstrap/config.go SetIstioVersion uses version.Info.Version). build-binaries.sh stamps
// the test bed's Go tools with the same istio.io/istio/pkg/version values as pilot-discovery. An
// unstamped build (go run, go test) reports "unknown", which we do not send: adsc then sends its
// own "65536.65536.65536" (pkg/adsc/adsc.go buildNode), which istiod treats as the newest proxy.
func DefaultIstioVersion() string {
	if v := version.Info.Version; v != "" && v != "unknown" {
		return v
	}
	return ""
}

// ID is the node id pilot-agent sends: "<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local",
// from Proxy.ServiceNode in pkg/istio-agent/agent.go with ID = podName.podNamespace and the
// default DNS domain from pilot/cmd/pilot-agent/app/cmd.go (initProxy, getDNSDomain); adsc's
// nodeID builds the same. istiod parses it back in pilot/pkg/model/context.go
// ParseServiceNodeWithMetadata.
func ID(proxyType, ip, pod, namespace string) string {
	return strings.Join([]string{
		proxyType, ip, pod + "." + namespace, namespace + ".svc." + constants.DefaultClusterLocalDomain,
	}, "~")
}

// Build builds the node the way pilot-agent does for a pod:
//   - ID: see ID.
//   - Metadata: the JSON names of pkg/model/proxy.go BootstrapNodeMetadata/NodeMetadata, filled from
//     what the injection templates (manifests/charts/istio-control/istio-discovery/files/
//     injection-template.yaml and gateway-injection-template.yaml) put in ISTIO_META_* and
//     POD_* env vars, which pkg/bootstrap/config.go GetNodeMetaData turns into metadata:
//     CLUSTER_ID, NETWORK, WORKLOAD_NAME, MESH_ID, INTERCEPTION_MODE from ISTIO_META_*; NAME and
//     NAMESPACE from POD_NAME/POD_NAMESPACE; INSTANCE_IPS from INSTANCE_IP; LABELS from the
//     downward-API pod labels file; ISTIO_VERSION from the binary's version.
//   - Locality: region/zone/subzone as pkg/model/proxy.go ConvertLocality splits it.
func Build(o Options) (*Node, error) {
	meta := pm.BootstrapNodeMetadata{
		NodeMetadata: pm.NodeMetadata{
			IstioVersion:     o.IstioVersion,
			InstanceIPs:      pm.StringList{o.IP},
			Namespace:        o.Namespace,
			WorkloadName:     o.WorkloadName,
			InterceptionMode: model.InterceptionRedirect,
			MeshID:           o.MeshID,
			ClusterID:        cluster.ID(o.ClusterID),
			Network:          network.ID(o.Network),
		},
		InstanceName: o.Pod,
	}
	if len(o.Labels) > 0 {
		meta.Labels = o.Labels
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	for k, v := range o.Meta {
		fields[k] = v
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, err
	}
	n := &Node{
		ID:       ID(o.Type, o.IP, o.Pod, o.Namespace),
		Type:     pm.NodeType(o.Type),
		Metadata: st,
	}
	if o.Locality != "" {
		n.Locality = pm.ConvertLocality(o.Locality)
	}
	return n, nil
}
