package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// clientHello is what the gateway learns from a ClientHello without terminating TLS, as Envoy's
// tls_inspector listener filter does (https://www.envoyproxy.io/docs/envoy/latest/configuration/listeners/listener_filters/tls_inspector).
type clientHello struct {
	ServerName string
	ALPN       []string
}

var errHelloCaptured = errors.New("client hello captured")

// readClientHello reads a TLS ClientHello from r with Go's own TLS parser and aborts the
// handshake right after it: nothing is written back. It returns every byte it read, which the
// gateway replays to the upstream so the end-to-end handshake proceeds untouched.
func readClientHello(r io.Reader) (*clientHello, []byte, error) {
	rec := &recordingConn{r: r}
	var hello *clientHello
	conf := &tls.Config{
		GetConfigForClient: func(info *tls.ClientHelloInfo) (*tls.Config, error) {
			hello = &clientHello{ServerName: info.ServerName, ALPN: append([]string(nil), info.SupportedProtos...)}
			return nil, errHelloCaptured
		},
	}
	err := tls.Server(rec, conf).Handshake()
	if hello != nil {
		return hello, rec.buf.Bytes(), nil
	}
	if err == nil {
		err = errors.New("handshake ended without a ClientHello")
	}
	return nil, rec.buf.Bytes(), fmt.Errorf("not a TLS ClientHello: %v", err)
}

// recordingConn feeds crypto/tls from a reader, keeping a copy of what was read; writes (the
// alert crypto/tls sends when the handshake is aborted) go nowhere.
type recordingConn struct {
	r   io.Reader
	buf bytes.Buffer
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.buf.Write(b[:n])
	return n, err
}

func (c *recordingConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *recordingConn) Close() error                       { return nil }
func (c *recordingConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *recordingConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *recordingConn) SetDeadline(t time.Time) error      { return nil }
func (c *recordingConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *recordingConn) SetWriteDeadline(t time.Time) error { return nil }
