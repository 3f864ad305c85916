// Package tlscert loads the certificate pbxd serves SIP over TLS (and
// secure WebSocket) with, or makes a self-signed one on the first start of
// a box that has none yet.
package tlscert

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
	"time"
)

// Config says where the certificate lives.
type Config struct {
	CertFile, KeyFile string
	// SelfSigned creates CertFile and KeyFile with a new self-signed
	// certificate when they do not exist.
	SelfSigned bool
	// Hosts are the names and IP addresses a self-signed certificate is
	// made for.
	Hosts []string
	Now   func() time.Time
}

// Load returns a server TLS configuration (TLS 1.2 or newer) and whether
// a certificate was created.
func Load(cfg Config) (*tls.Config, bool, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, false, errors.New("tlscert: certificate and key files are required")
	}
	created := false
	if _, err := os.Stat(cfg.CertFile); errors.Is(err, os.ErrNotExist) && cfg.SelfSigned {
		if err := create(cfg); err != nil {
			return nil, false, err
		}
		created = true
	}
	pair, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, false, fmt.Errorf("tlscert: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, created, nil
}

func create(cfg Config) error {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	t := now()
	tpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "pbxd", Organization: []string{"pbxd appliance"}},
		NotBefore:             t.Add(-time.Hour),
		NotAfter:              t.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range cfg.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tpl.IPAddresses = append(tpl.IPAddresses, ip)
		} else if h != "" {
			tpl.DNSNames = append(tpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.CertFile), 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(cfg.KeyFile), 0o700); err != nil {
		return err
	}
	if err := writeFile(cfg.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFile(cfg.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeFile writes atomically: a crash never leaves half a key.
func writeFile(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
