package main

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// testCA is a two-level mesh PKI like a plugged-in Istio CA: a root and an intermediate that
// signs workload and serving certificates.
type testCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
}

var serial = big.NewInt(1000)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial = new(big.Int).Add(serial, big.NewInt(1))
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestCA(t *testing.T, org, cluster string) *testCA {
	t.Helper()
	now := time.Now()
	ca := &testCA{rootKey: newKey(t), interKey: newKey(t)}
	ca.root = signCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "Root CA", Organization: []string{org}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, ca.rootKey.Public(), ca.rootKey)
	ca.inter = signCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "Intermediate CA", Organization: []string{org}, Locality: []string{cluster}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, ca.root, ca.interKey.Public(), ca.rootKey)
	return ca
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

func pemOf(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func keyPEM(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// workload issues an Istio-style workload certificate (URI SAN only, empty subject) and returns
// the chain leaf, intermediate, root as the CA hands it out.
func (ca *testCA) workload(t *testing.T, spiffe string) *tls.Certificate {
	t.Helper()
	u, err := url.Parse(spiffe)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	now := time.Now()
	leaf := signCert(t, &x509.Certificate{
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, ca.inter, k.Public(), ca.interKey)
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.inter.Raw, ca.root.Raw}, PrivateKey: k, Leaf: leaf}
}

// serving issues a DNS-named serving certificate (istiod's, for its CA port).
func (ca *testCA) serving(t *testing.T, dns string) tls.Certificate {
	t.Helper()
	k := newKey(t)
	now := time.Now()
	leaf := signCert(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: dns},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		DNSNames:    []string{dns},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.inter, k.Public(), ca.interKey)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.inter.Raw}, PrivateKey: k, Leaf: leaf}
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
