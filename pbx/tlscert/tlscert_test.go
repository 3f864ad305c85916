package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestSelfSignedOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{CertFile: filepath.Join(dir, "tls", "sip.crt"), KeyFile: filepath.Join(dir, "tls", "sip.key"), SelfSigned: true, Hosts: []string{"127.0.0.1", "pbx.example"}}
	tc, created, err := Load(cfg)
	if err != nil || !created || len(tc.Certificates) != 1 {
		t.Fatalf("first load: %v %v", created, err)
	}
	leaf, err := x509.ParseCertificate(tc.Certificates[0].Certificate[0])
	if err != nil || leaf.VerifyHostname("127.0.0.1") != nil || leaf.VerifyHostname("pbx.example") != nil {
		t.Fatalf("certificate names: %v", err)
	}
	if fi, _ := os.Stat(cfg.KeyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	_, created, err = Load(cfg)
	if err != nil || created {
		t.Fatalf("second load made a new certificate: %v %v", created, err)
	}
	if _, _, err := Load(Config{CertFile: filepath.Join(dir, "missing.crt"), KeyFile: filepath.Join(dir, "missing.key")}); err == nil {
		t.Fatal("missing certificate accepted without SelfSigned")
	}
	if tc.MinVersion != tls.VersionTLS12 {
		t.Fatal("old TLS versions allowed")
	}
}
