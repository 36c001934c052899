package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	pm "istio.io/istio/pkg/model"

	"tailmesh.dev/testbed-istio/internal/cli"
)

func TestMain(m *testing.M) {
	// As run does, before any of Istio's goroutines log.
	cli.ConfigureLogging(false)
	os.Exit(m.Run())
}

var identityArgs = []string{
	"--pod-ip", "10.101.0.7", "--pod", "echo-6d4b9c7f5-x2x9q", "--namespace", "default",
	"--cluster-id", "cluster1", "--network", "network1", "--service-account", "echo",
	"--ca", "istiod.istio-system.svc:15012", "--root-cert", "/tmp/root-cert.pem", "--token-file", "/tmp/token",
	"--label", "app=echo", "--label", "version=v1",
}

func TestFlags(t *testing.T) {
	o, err := parseFlags(append([]string{"sidecar", "-app-port", "5678", "--app-port", "8080"}, identityArgs...), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.spiffeID() != "spiffe://cluster.local/ns/default/sa/echo" || len(o.appPorts) != 2 || o.workloadName != o.pod ||
		o.caServerName != "istiod.istio-system.svc" || o.labels["version"] != "v1" || o.xds != "" {
		t.Errorf("sidecar options: %+v", o)
	}

	o, err = parseFlags(append([]string{"client", "--xds", "istiod:15010", "--host", "echo.default.svc.cluster.local", "--port", "80", "--count", "20"}, identityArgs...), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.count != 20 || o.timeout.Seconds() != 5 || o.path != "/" {
		t.Errorf("client options: %+v", o)
	}
	n, err := o.node(pm.SidecarProxy)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != "sidecar~10.101.0.7~echo-6d4b9c7f5-x2x9q.default~default.svc.cluster.local" ||
		n.Metadata.AsMap()["CLUSTER_ID"] != "cluster1" || n.Metadata.AsMap()["NETWORK"] != "network1" {
		t.Errorf("client node %s %v", n.ID, n.Metadata.AsMap())
	}

	o, err = parseFlags([]string{"gateway", "--xds", "istiod:15010", "--pod-ip", "10.102.0.3", "--pod", "istio-eastwestgateway-1",
		"--namespace", "istio-system", "--label", "istio=eastwestgateway", "--port", "15443"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	n, err = o.node(pm.Router)
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != "router~10.102.0.3~istio-eastwestgateway-1.istio-system~istio-system.svc.cluster.local" ||
		n.Metadata.AsMap()["LABELS"].(map[string]any)["istio"] != "eastwestgateway" {
		t.Errorf("gateway node %s %v", n.ID, n.Metadata.AsMap())
	}
}

func TestFlagErrors(t *testing.T) {
	sidecar := func(extra ...string) []string {
		return append(append([]string{"sidecar", "--app-port", "5678"}, identityArgs...), extra...)
	}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no subcommand":      {nil, "missing subcommand"},
		"unknown subcommand": {[]string{"waypoint"}, `unknown subcommand "waypoint"`},
		"unknown flag":       {sidecar("--bogus"), "flag provided but not defined: -bogus (mesh-dataplane sidecar -h lists the flags)"},
		"sidecar missing":    {[]string{"sidecar", "--pod", "p"}, "missing required flags: --ca, --pod-ip, --root-cert, --token-file"},
		"gateway missing":    {[]string{"gateway", "--pod", "p", "--pod-ip", "10.0.0.1"}, "missing required flags: --port, --xds"},
		"client missing":     {[]string{"client", "--pod", "p", "--pod-ip", "10.0.0.1"}, "missing required flags: --ca, --host, --port, --root-cert, --token-file, --xds"},
		"bad ip":             {append([]string{"sidecar", "--app-port", "1"}, append(identityArgs, "--pod-ip", "pod")...), "--pod-ip:"},
		"bad port":           {sidecar("--app-port", "0"), "want a port number 1-65535"},
		"port twice":         {sidecar("--app-port", "5678"), "--app-port 5678 given twice"},
		"bad ca":             {sidecar("--ca", "istiod"), "--ca:"},
		"bad label":          {sidecar("--label", "novalue"), "want key=value"},
		"bad trust domain":   {sidecar("--trust-domain", "a/b"), "--trust-domain must be a plain domain"},
		"bad ttl":            {sidecar("--cert-ttl", "1s"), "--cert-ttl must be at least 1m"},
		"extra args":         {sidecar("stray"), "unexpected arguments"},
		"gateway no app-port": {[]string{"gateway", "--xds", "i:1", "--pod", "p", "--pod-ip", "10.0.0.1", "--port", "15443", "--app-port", "1"},
			"flag provided but not defined: -app-port"},
		"client bad count": {append([]string{"client", "--xds", "i:1", "--host", "h", "--port", "80", "--count", "0"}, identityArgs...), "--count must be at least 1"},
		"client bad path":  {append([]string{"client", "--xds", "i:1", "--host", "h", "--port", "80", "--path", "x"}, identityArgs...), "--path must start with /"},
		"client port":      {append([]string{"client", "--xds", "i:1", "--host", "h", "--port", "70000"}, identityArgs...), "--port must be 1-65535"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseFlags(tc.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
			var stderr bytes.Buffer
			if code := run(tc.args, &bytes.Buffer{}, &stderr); code != 2 {
				t.Errorf("exit %d, want 2 (stderr %q)", code, stderr.String())
			}
		})
	}
	var usage bytes.Buffer
	if code := run([]string{"client", "-h"}, &bytes.Buffer{}, &usage); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	for _, f := range []string{"-pod-ip", "-pod", "-namespace", "-cluster-id", "-network", "-service-account", "-xds", "-ca", "-root-cert",
		"-token-file", "-trust-domain", "-label", "-host", "-port", "-count", "-timeout", "-path"} {
		if !strings.Contains(usage.String(), "  "+f+" ") {
			t.Errorf("client usage lacks %s", f)
		}
	}
}
