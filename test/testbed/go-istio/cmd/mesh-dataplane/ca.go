package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/credentialfetcher/plugin"
	"istio.io/istio/security/pkg/nodeagent/caclient/providers/citadel"
	pkiutil "istio.io/istio/security/pkg/pki/util"
)

// csrSigner is the CA call pilot-agent's SDS server makes for a workload certificate
// (security/pkg/nodeagent/cache/secretcache.go generateNewSecret calls caClient.CSRSign).
type csrSigner interface {
	CSRSign(csrPEM []byte, certValidTTLInSec int64) ([]string, error)
}

// newCitadelSigner builds Istio's CA client as pilot-agent does for istiod's CA
// (pkg/istio-agent/agent.go newCitadelClient; pilot/cmd/pilot-agent/options/security.go): TLS to
// the CA address verified with the mesh root for the name istiod.istio-system.svc (CA_ADDR's
// host, security.Options.CAEndpointSAN), the ServiceAccount token as the bearer credential read
// from the file for every call (security/pkg/credentialfetcher/plugin/token.go), and the
// ClusterID header istiod's CA uses to pick the cluster that validates the token.
func newCitadelSigner(o *options) (csrSigner, error) {
	if _, err := os.Stat(o.rootCert); err != nil {
		return nil, fmt.Errorf("--root-cert: %v", err)
	}
	opts := &security.Options{
		CAEndpoint:    o.ca,
		CAEndpointSAN: o.caServerName,
		ClusterID:     o.clusterID,
		TrustDomain:   o.trustDomain,
		CredFetcher:   plugin.CreateTokenPlugin(o.tokenFile),
	}
	c, err := citadel.NewCitadelClient(opts, &citadel.TLSOptions{RootCert: o.rootCert})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// workloadCert is an issued certificate chain with its key.
type workloadCert struct {
	// cert holds the whole chain the CA returned (leaf, intermediates, root), as pilot-agent's
	// SDS hands it to Envoy (secretcache.go concatCerts), and the leaf's key.
	cert     *tls.Certificate
	chain    []*x509.Certificate
	issuedAt time.Time
}

func (w *workloadCert) leaf() *x509.Certificate { return w.chain[0] }

// rotateAt is when pilot-agent would replace the certificate: at SECRET_GRACE_PERIOD_RATIO (0.5)
// of its lifetime (security/pkg/nodeagent/cache/secretcache.go rotateTime; jitter left out).
func (w *workloadCert) rotateAt() time.Time {
	return w.issuedAt.Add(w.leaf().NotAfter.Sub(w.issuedAt) / 2)
}

// newWorkloadCert joins the CA's answer (one PEM certificate per element, root last) with the key.
func newWorkloadCert(chainPEM []string, keyPEM []byte, issuedAt time.Time) (*workloadCert, error) {
	var joined strings.Builder
	for _, c := range chainPEM {
		joined.WriteString(strings.TrimSpace(c))
		joined.WriteString("\n")
	}
	cert, err := tls.X509KeyPair([]byte(joined.String()), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the CA's certificate chain does not fit the key: %v", err)
	}
	w := &workloadCert{cert: &cert, issuedAt: issuedAt}
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("the CA's certificate chain: %v", err)
		}
		w.chain = append(w.chain, c)
	}
	cert.Leaf = w.chain[0]
	return w, nil
}

// certManager obtains the workload certificate from the CA and keeps it fresh, as pilot-agent's
// SDS cache does: a new key and CSR for every certificate (pkiutil.GenCSR with the SPIFFE ID as
// the SAN, RSA 2048 as WORKLOAD_RSA_KEY_SIZE defaults), rotation at half the lifetime, and on
// failure a retry with back-off, never giving up.
type certManager struct {
	identity   string
	tokenFile  string
	ttl        time.Duration
	newSigner  func() (csrSigner, error)
	roots      *rootSource
	log        *logger
	minBackoff time.Duration
	maxBackoff time.Duration

	signer    csrSigner
	mu        sync.RWMutex
	cur       *workloadCert
	first     chan struct{}
	firstOnce sync.Once
}

func newCertManager(o *options, roots *rootSource, log *logger) *certManager {
	return &certManager{
		identity:   o.spiffeID(),
		tokenFile:  o.tokenFile,
		ttl:        o.certTTL,
		newSigner:  func() (csrSigner, error) { return newCitadelSigner(o) },
		roots:      roots,
		log:        log,
		minBackoff: time.Second,
		maxBackoff: 30 * time.Second,
		first:      make(chan struct{}),
	}
}

// Ready is closed once the first certificate is held.
func (m *certManager) Ready() <-chan struct{} { return m.first }

// Current is the certificate in use, nil before the first one.
func (m *certManager) Current() *workloadCert {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cur
}

// Certificate is the tls.Certificate in use, for tls.Config callbacks.
func (m *certManager) Certificate() (*tls.Certificate, error) {
	if c := m.Current(); c != nil {
		return c.cert, nil
	}
	return nil, errors.New("no workload certificate from the CA yet")
}

func (m *certManager) set(w *workloadCert) {
	m.mu.Lock()
	m.cur = w
	m.mu.Unlock()
	m.firstOnce.Do(func() { close(m.first) })
}

// fetchOnce generates a key and CSR and has the CA sign it.
func (m *certManager) fetchOnce() (*workloadCert, error) {
	if m.signer == nil {
		s, err := m.newSigner()
		if err != nil {
			return nil, fmt.Errorf("CA client: %v", err)
		}
		m.signer = s
	}
	if m.tokenFile != "" {
		// The token plugin sends no credential when the file is unreadable, and the CA then only
		// says "request authenticate failure": name the cause.
		f, err := os.Open(m.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %v", err)
		}
		_ = f.Close()
	}
	csrPEM, keyPEM, err := pkiutil.GenCSR(pkiutil.CertOptions{Host: m.identity, RSAKeySize: 2048})
	if err != nil {
		return nil, fmt.Errorf("generating the key and CSR: %v", err)
	}
	issuedAt := time.Now()
	chain, err := m.signer.CSRSign(csrPEM, int64(m.ttl.Seconds()))
	if err != nil {
		return nil, fmt.Errorf("the CA did not sign the CSR: %v", err)
	}
	return newWorkloadCert(chain, keyPEM, issuedAt)
}

// run keeps a valid certificate until ctx ends.
func (m *certManager) run(ctx context.Context) {
	backoff := m.minBackoff
	for {
		w, err := m.fetchOnce()
		var wait time.Duration
		if err != nil {
			m.log.Printf("workload certificate for %s: %v; retrying in %s", m.identity, err, backoff)
			wait = backoff
			backoff = min(2*backoff, m.maxBackoff)
		} else {
			backoff = m.minBackoff
			m.set(w)
			wait = time.Until(w.rotateAt())
			m.log.Printf("workload certificate for %s issued by %q, valid until %s; rotating at %s",
				m.identity, w.leaf().Issuer.String(), w.leaf().NotAfter.UTC().Format(time.RFC3339), w.rotateAt().UTC().Format(time.RFC3339))
			if m.roots != nil {
				if pool, err := m.roots.Pool(); err == nil {
					if _, err := verifyChain(w.chain, pool); err != nil {
						m.log.Printf("warning: the CA's chain for %s does not verify against the root certificate file %s (%v); peers trusting that root will reject it",
							m.identity, m.roots.path, err)
					}
				}
			}
		}
		t := time.NewTimer(max(wait, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// rootSource reads the mesh root file (the istio-ca-root-cert ConfigMap's root-cert.pem, which
// may change when roots rotate), re-reading it when it changes, as pilot-agent watches its root.
type rootSource struct {
	path    string
	mu      sync.Mutex
	modTime time.Time
	size    int64
	pool    *x509.CertPool
}

func (r *rootSource) Pool() (*x509.CertPool, error) {
	st, err := os.Stat(r.path)
	if err != nil {
		return nil, fmt.Errorf("root certificate file: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pool != nil && st.ModTime().Equal(r.modTime) && st.Size() == r.size {
		return r.pool, nil
	}
	pemBytes, err := os.ReadFile(r.path)
	if err != nil {
		return nil, fmt.Errorf("root certificate file: %v", err)
	}
	pool, err := parseRoots(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("root certificate file %s: %v", r.path, err)
	}
	r.pool, r.modTime, r.size = pool, st.ModTime(), st.Size()
	return pool, nil
}

func parseRoots(pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// verifyChain verifies a presented chain (leaf first) against the mesh root, as Envoy's default
// certificate validator does with the ROOTCA secret as trusted_ca: the other certificates serve
// as intermediates, any extended key usage is accepted, and no hostname is checked (SANs are
// matched separately where the config asks).
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool) ([][]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	return certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
}

// uriSANs lists a certificate's URI SANs (SPIFFE IDs for Istio workloads).
func uriSANs(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return out
}
