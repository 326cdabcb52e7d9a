package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names of the self-signed material in the data directory.
const (
	CertFileName = "tls-cert.pem"
	KeyFileName  = "tls-key.pem"
)

// Defaults for self-signed certificates.
const (
	DefaultValidity    = 365 * 24 * time.Hour
	DefaultRenewBefore = 30 * 24 * time.Hour
)

// LoadKeyPair loads a PEM certificate (chain) and private key.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsutil: load key pair: %w", err)
	}
	return c, nil
}

// ServerConfig returns a server tls.Config for cert: TLS 1.2 or later,
// HTTP/2 (as gRPC needs).
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2"},
	}
}

// ClientConfig returns a client tls.Config that trusts only the
// certificates in caFile (PEM): the system roots are not used, so the
// server's certificate is pinned to that file. For the gateway's
// self-signed certificate, caFile is the certificate itself. serverName
// overrides the name checked against the certificate ("" derives it from
// the dialled address).
func ClientConfig(caFile, serverName string) (*tls.Config, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tlsutil: %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}

// SelfSignedConfig configures EnsureSelfSigned.
type SelfSignedConfig struct {
	// Dir holds the certificate and key (required); it should be the
	// owner-only data directory.
	Dir string
	// ExtraNames are added to the SANs: IP literals as IP SANs, anything
	// else as DNS names.
	ExtraNames []string
	// Validity of a new certificate; 0 means DefaultValidity.
	Validity time.Duration
	// RenewBefore regenerates a certificate this close to expiry; 0 means
	// DefaultRenewBefore.
	RenewBefore time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Hostname returns the machine name; nil means os.Hostname.
	Hostname func() (string, error)
}

// SelfSigned is the outcome of EnsureSelfSigned.
type SelfSigned struct {
	// Certificate is ready for ServerConfig.
	Certificate tls.Certificate
	// CertFile is the PEM certificate to give clients for pinning.
	CertFile string
	// KeyFile is the private key (mode 0600).
	KeyFile string
	// Generated is true when a new certificate was written.
	Generated bool
	// NotAfter is the certificate's expiry.
	NotAfter time.Time
}

// EnsureSelfSigned loads the self-signed certificate from cfg.Dir, or
// generates and persists one when it is missing, unreadable, mismatched with
// its key, expired or within RenewBefore of expiry, or when its SANs lack one
// of the wanted names (localhost, the hostname, 127.0.0.1, ::1, ExtraNames).
func EnsureSelfSigned(cfg SelfSignedConfig) (SelfSigned, error) {
	if cfg.Dir == "" {
		return SelfSigned{}, errors.New("tlsutil: no directory for the self-signed certificate")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.RenewBefore <= 0 {
		cfg.RenewBefore = DefaultRenewBefore
	}
	if cfg.RenewBefore >= cfg.Validity {
		return SelfSigned{}, errors.New("tlsutil: renew-before must be shorter than the validity")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hostname == nil {
		cfg.Hostname = os.Hostname
	}
	dns, ips := wantedNames(cfg)
	certFile := filepath.Join(cfg.Dir, CertFileName)
	keyFile := filepath.Join(cfg.Dir, KeyFileName)
	now := cfg.Now()

	if c, leaf, err := loadLeaf(certFile, keyFile); err == nil &&
		now.After(leaf.NotBefore) && now.Add(cfg.RenewBefore).Before(leaf.NotAfter) && covers(leaf, dns, ips) {
		return SelfSigned{Certificate: c, CertFile: certFile, KeyFile: keyFile, NotAfter: leaf.NotAfter}, nil
	}

	certPEM, keyPEM, notAfter, err := generate(now, cfg.Validity, dns, ips)
	if err != nil {
		return SelfSigned{}, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return SelfSigned{}, fmt.Errorf("tlsutil: create directory: %w", err)
	}
	// Key first: a crash between the two writes leaves a mismatched pair,
	// which the next start detects and regenerates.
	if err := writeReplace(keyFile, keyPEM, 0o600); err != nil {
		return SelfSigned{}, fmt.Errorf("tlsutil: write key: %w", err)
	}
	if err := writeReplace(certFile, certPEM, 0o644); err != nil {
		return SelfSigned{}, fmt.Errorf("tlsutil: write certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return SelfSigned{}, fmt.Errorf("tlsutil: new key pair: %w", err)
	}
	return SelfSigned{Certificate: c, CertFile: certFile, KeyFile: keyFile, Generated: true, NotAfter: notAfter}, nil
}

// wantedNames returns the SANs a self-signed certificate must carry.
func wantedNames(cfg SelfSignedConfig) (dns []string, ips []net.IP) {
	dns = []string{"localhost"}
	ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if h, err := cfg.Hostname(); err == nil && h != "" {
		dns = append(dns, strings.ToLower(h))
	}
	for _, n := range cfg.ExtraNames {
		n = strings.TrimSpace(n)
		switch ip := net.ParseIP(strings.Trim(n, "[]")); {
		case n == "":
		case ip != nil:
			ips = append(ips, ip)
		default:
			dns = append(dns, strings.ToLower(n))
		}
	}
	slices.Sort(dns)
	return slices.Compact(dns), ips
}

func covers(leaf *x509.Certificate, dns []string, ips []net.IP) bool {
	for _, d := range dns {
		if !slices.ContainsFunc(leaf.DNSNames, func(s string) bool { return strings.EqualFold(s, d) }) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func loadLeaf(certFile, keyFile string) (tls.Certificate, *x509.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	c.Leaf = leaf
	return c, leaf, nil
}

func generate(now time.Time, validity time.Duration, dns []string, ips []net.IP) (certPEM, keyPEM []byte, notAfter time.Time, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("tlsutil: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("tlsutil: serial: %w", err)
	}
	cn := "mxgateway self-signed"
	if len(dns) > 0 {
		cn += " (" + strings.Join(dns, ", ") + ")"
	}
	if len(cn) > 64 {
		cn = cn[:64]
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"mxgateway"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // clients pin it as its own CA
		MaxPathLenZero:        true,
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("tlsutil: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("tlsutil: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, tmpl.NotAfter, nil
}

// writeReplace writes data to path atomically (temporary file, then rename)
// with the given mode.
func writeReplace(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(name)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return nil
}
