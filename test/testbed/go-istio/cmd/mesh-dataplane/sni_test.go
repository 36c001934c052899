package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"reflect"
	"strings"
	"testing"
)

// clientHelloBytes returns the bytes a real crypto/tls client sends first.
func clientHelloBytes(t *testing.T, conf *tls.Config) []byte {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	go func() { _ = tls.Client(c1, conf).Handshake() }()
	hello, replay, err := readClientHello(c2)
	if err != nil {
		t.Fatal(err)
	}
	if hello.ServerName != conf.ServerName {
		t.Errorf("SNI = %q, want %q", hello.ServerName, conf.ServerName)
	}
	return replay
}

func TestReadClientHello(t *testing.T) {
	conf := &tls.Config{
		ServerName: "outbound_.80_._.echo.default.svc.cluster.local",
		NextProtos: []string{"istio-peer-exchange", "istio"},
	}
	replay := clientHelloBytes(t, conf)
	if !looksLikeClientHello(replay) {
		t.Errorf("replayed bytes do not start with a TLS handshake record: % x", replay[:3])
	}
	// What is replayed is the whole ClientHello: parsing it again gives the same answer.
	hello, again, err := readClientHello(bytes.NewReader(replay))
	if err != nil {
		t.Fatal(err)
	}
	if hello.ServerName != conf.ServerName || !reflect.DeepEqual(hello.ALPN, conf.NextProtos) || !bytes.Equal(again, replay) {
		t.Errorf("re-read: %+v, %d of %d bytes", hello, len(again), len(replay))
	}

	// A subset SNI and no ALPN.
	clientHelloBytes(t, &tls.Config{ServerName: "outbound_.8080_.v1_.echo.default.svc.cluster.local"})

	// Not TLS.
	if _, got, err := readClientHello(strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil ||
		!strings.Contains(err.Error(), "not a TLS ClientHello") || len(got) == 0 {
		t.Errorf("plaintext: err = %v", err)
	}
	if looksLikeClientHello([]byte("GET")) {
		t.Error("GET looks like a ClientHello")
	}
}
