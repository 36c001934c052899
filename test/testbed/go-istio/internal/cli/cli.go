// Package cli holds command line helpers shared by the test bed's Go tools.
package cli

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"istio.io/istio/pkg/log"
)

// KVFlag is a repeatable key=value flag.
type KVFlag map[string]string

func (f KVFlag) String() string { return "" }

// Set adds one key=value pair.
func (f KVFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	f[k] = v
	return nil
}

// ListFlag is a repeatable string flag.
type ListFlag []string

func (f *ListFlag) String() string { return "" }

// Set appends one value.
func (f *ListFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*f = append(*f, s)
	return nil
}

var logOnce sync.Once

// ConfigureLogging sends Istio's logs to stderr (its default is stdout, pkg/log/options.go),
// keeping stdout for the tools' own output, and quiets them to errors unless verbose. Only the
// first call counts: log.Configure swaps global loggers that running goroutines read.
func ConfigureLogging(verbose bool) {
	logOnce.Do(func() {
		o := log.DefaultOptions()
		o.OutputPaths = []string{"stderr"}
		level := log.ErrorLevel
		if verbose {
			level = log.InfoLevel
		}
		o.SetDefaultOutputLevel(log.OverrideScopeName, level)
		_ = log.Configure(o)
	})
}
