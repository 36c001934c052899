package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// hostnameChildEnv marks the re-executed sidecar running in its own UTS namespace.
const hostnameChildEnv = "MESH_DATAPLANE_HOSTNAME_CHILD"

// reexecForHostname is set by main only, so tests calling run never re-execute the test binary.
var reexecForHostname = false

// ensureHostname gives the sidecar the pod's hostname. Istio's echo server reports os.Hostname()
// as Hostname= (pkg/test/echo/server/endpoint/http.go addResponsePayload), and in a pod that is
// the pod's name (the kubelet sets it: pkg/kubelet/kubelet_pods.go GeneratePodHostNameAndDomain;
// the runtime puts the pod in a UTS namespace of its own). Here every pod shares the machine's
// namespaces, so the sidecar re-executes itself in a new UTS namespace (needs CAP_SYS_ADMIN, as
// the test bed's other namespaces do) and sets the hostname there. The parent only supervises:
// it passes SIGINT/SIGTERM on and exits with the child's status (supervised=true). Without the
// privilege it carries on in-process with a warning, and echo reports the machine's hostname.
func ensureHostname(ctx context.Context, o *options, stdout io.Writer, log *logger) (code int, supervised bool) {
	if h, err := os.Hostname(); err == nil && h == o.pod {
		return 0, false
	}
	if os.Getenv(hostnameChildEnv) == "1" {
		if err := syscall.Sethostname([]byte(o.pod)); err != nil {
			log.Printf("warning: cannot set the hostname to %s (%v); echo reports Hostname=%s", o.pod, err, hostnameOr("?"))
		}
		return 0, false
	}
	if !reexecForHostname {
		return 0, false
	}
	// Pdeathsig fires when the creating OS thread exits: keep this goroutine on one thread until
	// the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	exe, err := os.Executable()
	if err == nil {
		cmd := exec.Command(exe, o.args...)
		cmd.Env = append(os.Environ(), hostnameChildEnv+"=1")
		cmd.Stdout = stdout
		cmd.Stderr = log.w
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS, Pdeathsig: syscall.SIGKILL}
		if err = cmd.Start(); err == nil {
			done := make(chan struct{})
			go func() {
				select {
				case <-ctx.Done():
					_ = cmd.Process.Signal(syscall.SIGTERM)
				case <-done:
				}
			}()
			err := cmd.Wait()
			close(done)
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.Signaled() {
					return 1, true
				}
				return exit.ExitCode(), true
			}
			if err != nil {
				log.Printf("sidecar child: %v", err)
				return 1, true
			}
			return 0, true
		}
	}
	log.Printf("warning: cannot run in a UTS namespace of its own (%v); echo reports Hostname=%s, not %s", err, hostnameOr("?"), o.pod)
	return 0, false
}

func hostnameOr(def string) string {
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return def
}
