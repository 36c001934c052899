// Command mesh-dataplane stands in for Istio's data plane (Envoy driven by pilot-agent) in the
// test bed, where no Envoy binary exists. It acts only on what a real istiod tells it over xDS
// and on certificates the real istiod CA issues:
//
//   - sidecar: Istio's echo app (pkg/test/echo/server) behind a sidecar inbound listener in
//     PERMISSIVE mode: mTLS with the workload certificate or plaintext, on the pod IP;
//   - gateway: the east-west gateway's AUTO_PASSTHROUGH listener (SNI routing to the EDS
//     endpoints istiod sends a router proxy);
//   - client: one-shot requests through a sidecar's outbound path (CDS, EDS, transport socket
//     matches and load balancing as Envoy applies them).
//
// The node identity is built like pilot-agent's (internal/xdsnode, shared with xds-probe), xDS is
// delta ADS through Istio's own client (internal/ads, pkg/adsc), and certificates come from
// istiod's CA through pilot-agent's CA client
// (security/pkg/nodeagent/caclient/providers/citadel/client.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	istiolog "istio.io/istio/pkg/log"
	pm "istio.io/istio/pkg/model"

	"tailmesh.dev/testbed-istio/internal/cli"
	"tailmesh.dev/testbed-istio/internal/xdsnode"
)

const usageText = `mesh-dataplane stands in for Istio's data plane (Envoy + pilot-agent) in the test bed, acting only
on what istiod sends over xDS and on certificates istiod's CA issues.

Usage:
  mesh-dataplane sidecar <flags> [--app-port P ...]
      Istio's echo server behind a PERMISSIVE sidecar inbound on <pod-ip>:P (mTLS or plaintext).
      Prints "ready" on stdout once it holds a workload certificate and listens; logs on stderr.
  mesh-dataplane gateway <flags> --port 15443 [--port ...]
      The east-west gateway's AUTO_PASSTHROUGH listener: routes TLS by SNI to the endpoints istiod
      sends a router proxy. Prints "ready" on stdout once istiod's CDS, LDS and the EDS of every
      cluster arrived and it listens; logs on stderr.
  mesh-dataplane client <flags> --host H --port P [--count N] [--timeout 5s] [--path /]
      Sends N requests through the outbound path istiod configures for a sidecar and prints one
      JSON document on stdout.

Run "mesh-dataplane <subcommand> -h" for the flags. Flags take one or two dashes.
Exit status: 2 on bad flags; client: 0 when istiod answered (even if requests failed), 1 when
istiod or the CA could not be reached or gave no answer in time.
`

// options are the flags of all subcommands; each subcommand registers the ones it uses.
type options struct {
	cmd string
	// args are the command line after the program name (the sidecar re-executes itself with them).
	args []string

	// Identity.
	podIP          string
	pod            string
	namespace      string
	clusterID      string
	network        string
	serviceAccount string
	trustDomain    string
	meshID         string
	workloadName   string
	locality       string
	istioVersion   string
	labels         map[string]string
	meta           map[string]string

	// istiod.
	xds          string
	ca           string
	caServerName string
	rootCert     string
	tokenFile    string
	certTTL      time.Duration

	// sidecar
	appPorts []int
	// gateway
	ports []int
	// client
	host    string
	port    int
	count   int
	timeout time.Duration
	path    string

	verbose bool
}

// intList is a repeatable port flag.
type intList []int

func (l *intList) String() string { return "" }

func (l *intList) Set(s string) error {
	var p int
	if _, err := fmt.Sscanf(s, "%d", &p); err != nil || fmt.Sprint(p) != s || p < 1 || p > 65535 {
		return fmt.Errorf("want a port number 1-65535, got %q", s)
	}
	*l = append(*l, p)
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return nil, errors.New("missing subcommand: sidecar, gateway or client")
	}
	o := &options{cmd: args[0], args: args, labels: map[string]string{}, meta: map[string]string{}}
	switch o.cmd {
	case "sidecar", "gateway", "client":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usageText)
		return nil, flag.ErrHelp
	default:
		return nil, fmt.Errorf("unknown subcommand %q: want sidecar, gateway or client", o.cmd)
	}
	fs := flag.NewFlagSet("mesh-dataplane "+o.cmd, flag.ContinueOnError)

	fs.StringVar(&o.podIP, "pod-ip", "", "the pod's `IP` (an address on lo); listeners bind to it and istiod finds the workload by it (none for a pod that only sends, like the recipe's client)")
	fs.StringVar(&o.pod, "pod", "", "the pod's `name` (required)")
	fs.StringVar(&o.namespace, "namespace", "default", "the pod's `namespace`")
	fs.StringVar(&o.clusterID, "cluster-id", "Kubernetes", "the pod's Istio cluster `name` (CLUSTER_ID; the injector's default)")
	fs.StringVar(&o.network, "network", "", "the pod's Istio `network` (NETWORK)")
	fs.StringVar(&o.serviceAccount, "service-account", "default", "the pod's ServiceAccount `name`; the workload certificate's identity")
	fs.StringVar(&o.trustDomain, "trust-domain", "cluster.local", "the mesh trust `domain`; the certificate's SAN is spiffe://<domain>/ns/<namespace>/sa/<service account>")
	fs.StringVar(&o.meshID, "mesh-id", "cluster.local", "the mesh `id` (MESH_ID; the injector falls back to the trust domain)")
	fs.StringVar(&o.workloadName, "workload-name", "", "WORKLOAD_NAME, the owning Deployment's `name` as the injector sets it (default: --pod)")
	fs.StringVar(&o.locality, "locality", "", "the proxy's locality `region/zone[/subzone]`")
	fs.StringVar(&o.istioVersion, "istio-version", xdsnode.DefaultIstioVersion(), "the `version` the proxy reports (ISTIO_VERSION); defaults to the pinned istio module's version stamped into this binary")
	fs.Var(cli.KVFlag(o.labels), "label", "a pod `key=value` label, repeatable (node metadata LABELS; e.g. istio=eastwestgateway for the gateway)")
	fs.Var(cli.KVFlag(o.meta), "meta", "extra node metadata `KEY=value`, repeatable, as an ISTIO_META_KEY env var would set it (e.g. REQUESTED_NETWORK_VIEW=network1)")
	fs.BoolVar(&o.verbose, "verbose", false, "log Istio's libraries (xDS client, CA client, echo server) at info level on stderr")

	xdsUsage := "istiod's plaintext xDS address `host:port`, istiod's port 15010"
	caUsage := "istiod's CA gRPC address `host:port`, istiod's port 15012 (TLS)"
	switch o.cmd {
	case "sidecar":
		xdsUsage += " (optional: when set, the sidecar keeps an ADS stream open as its Envoy would, so istiod counts it as a connected proxy; nothing it sends is used)"
		caUsage += " (required)"
	case "gateway":
		xdsUsage += " (required)"
		caUsage += " (optional and unused: AUTO_PASSTHROUGH needs no certificate; accepted so all subcommands take the same identity flags)"
	case "client":
		xdsUsage += " (required)"
		caUsage += " (required)"
	}
	fs.StringVar(&o.xds, "xds", "", xdsUsage)
	fs.StringVar(&o.ca, "ca", "", caUsage)
	fs.StringVar(&o.caServerName, "ca-server-name", "istiod.istio-system.svc", "the `name` istiod's CA serving certificate is verified for (pilot-agent's CA_ADDR host)")
	fs.StringVar(&o.rootCert, "root-cert", "", "PEM `file` with the mesh root: root-cert.pem of the pod namespace's istio-ca-root-cert ConfigMap; verifies istiod's CA and mesh peers")
	fs.StringVar(&o.tokenFile, "token-file", "", "`file` with a ServiceAccount token for audience istio-ca; re-read for every CSR")
	fs.DurationVar(&o.certTTL, "cert-ttl", 24*time.Hour, "the workload certificate lifetime asked of the CA (pilot-agent's SECRET_TTL); rotated at half its actual lifetime")

	switch o.cmd {
	case "sidecar":
		fs.Var((*intList)(&o.appPorts), "app-port", "an application `port`, repeatable: echo serves it behind an inbound listener on <pod-ip>:port (required)")
	case "gateway":
		fs.Var((*intList)(&o.ports), "port", "a gateway `port` to listen on at <pod-ip>, repeatable, e.g. 15443 (required)")
	case "client":
		fs.StringVar(&o.host, "host", "", "the service `hostname` to call, e.g. echo.default.svc.cluster.local (required)")
		fs.IntVar(&o.port, "port", 0, "the service `port` to call; the cluster is outbound|port||host (required)")
		fs.IntVar(&o.count, "count", 1, "how many requests to send")
		fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "time limit per request; istiod and the CA get count × timeout together")
		fs.StringVar(&o.path, "path", "/", "the request `path`")
	}
	// Parse quietly: -h prints the flags, a bad flag is one line (run turns it into exit 2).
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprintf(stderr, "Usage of mesh-dataplane %s (see mesh-dataplane -h):\n", o.cmd)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, fmt.Errorf("%v (mesh-dataplane %s -h lists the flags)", err, o.cmd)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.workloadName == "" {
		o.workloadName = o.pod
	}
	return o, nil
}

func (o *options) validate() error {
	required := map[string]string{"--pod-ip": o.podIP, "--pod": o.pod, "--namespace": o.namespace,
		"--service-account": o.serviceAccount, "--trust-domain": o.trustDomain}
	switch o.cmd {
	case "sidecar":
		required["--ca"], required["--root-cert"], required["--token-file"] = o.ca, o.rootCert, o.tokenFile
	case "gateway":
		required["--xds"] = o.xds
	case "client":
		required["--xds"], required["--ca"], required["--root-cert"], required["--token-file"] = o.xds, o.ca, o.rootCert, o.tokenFile
		required["--host"] = o.host
	}
	var missing []string
	for name, v := range required {
		if v == "" {
			missing = append(missing, name)
		}
	}
	switch {
	case o.cmd == "gateway" && len(o.ports) == 0:
		missing = append(missing, "--port")
	case o.cmd == "client" && o.port == 0:
		missing = append(missing, "--port")
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("missing required flags: %s", strings.Join(missing, ", "))
	}
	if _, err := netip.ParseAddr(o.podIP); err != nil {
		return fmt.Errorf("--pod-ip: %v", err)
	}
	for name, addr := range map[string]string{"--xds": o.xds, "--ca": o.ca} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	if strings.ContainsAny(o.trustDomain, "/:") {
		return fmt.Errorf("--trust-domain must be a plain domain, got %q", o.trustDomain)
	}
	if o.locality != "" && strings.Count(o.locality, "/") > 2 {
		return fmt.Errorf("--locality must be region/zone[/subzone], got %q", o.locality)
	}
	if o.certTTL < time.Minute {
		return fmt.Errorf("--cert-ttl must be at least 1m, got %s", o.certTTL)
	}
	if err := distinct("--app-port", o.appPorts); err != nil {
		return err
	}
	if err := distinct("--port", o.ports); err != nil {
		return err
	}
	if o.cmd == "client" {
		if o.port < 1 || o.port > 65535 {
			return fmt.Errorf("--port must be 1-65535, got %d", o.port)
		}
		if o.count < 1 {
			return fmt.Errorf("--count must be at least 1, got %d", o.count)
		}
		if o.timeout <= 0 {
			return errors.New("--timeout must be positive")
		}
		if !strings.HasPrefix(o.path, "/") {
			return fmt.Errorf("--path must start with /, got %q", o.path)
		}
	}
	return nil
}

func distinct(name string, ports []int) error {
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			return fmt.Errorf("%s %d given twice", name, p)
		}
		seen[p] = true
	}
	return nil
}

// spiffeID is the workload identity the CA puts in the certificate (pkg/spiffe Identity).
func (o *options) spiffeID() string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", o.trustDomain, o.namespace, o.serviceAccount)
}

// node builds the xDS node for the given proxy type, as pilot-agent would.
func (o *options) node(t pm.NodeType) (*xdsnode.Node, error) {
	return xdsnode.Build(xdsnode.Options{
		Type:         string(t),
		IP:           o.podIP,
		Pod:          o.pod,
		Namespace:    o.namespace,
		ClusterID:    o.clusterID,
		Network:      o.network,
		MeshID:       o.meshID,
		WorkloadName: o.workloadName,
		Labels:       o.labels,
		Meta:         o.meta,
		Locality:     o.locality,
		IstioVersion: o.istioVersion,
	})
}

// logger writes one line per event to stderr, prefixed with the subcommand and pod.
type logger struct {
	w      io.Writer
	prefix string
}

func (l *logger) Printf(format string, args ...any) {
	fmt.Fprintf(l.w, "%s %s%s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), l.prefix, fmt.Sprintf(format, args...))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "mesh-dataplane: %v\n", err)
		return 2
	}
	cli.ConfigureLogging(o.verbose)
	if !o.verbose {
		// The CA client logs every failed CSR itself (citadel/client.go CSRSign); certManager
		// already logs one line per attempt.
		if s := istiolog.FindScope("citadelclient"); s != nil {
			s.SetOutputLevel(istiolog.NoneLevel)
		}
	}
	log := &logger{w: stderr, prefix: fmt.Sprintf("mesh-dataplane %s %s/%s: ", o.cmd, o.namespace, o.pod)}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch o.cmd {
	case "sidecar":
		return runSidecar(ctx, o, stdout, log)
	case "gateway":
		return runGateway(ctx, o, stdout, log)
	default:
		return runClient(ctx, o, stdout, log)
	}
}

func main() {
	reexecForHostname = true
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
