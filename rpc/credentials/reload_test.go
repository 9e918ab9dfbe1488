package credentials_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/h2rpc/h2rpc/internal/testcert"
	"github.com/h2rpc/h2rpc/rpc/credentials"
)

func writePEM(t *testing.T, cert tls.Certificate, certFile, keyFile string) {
	t.Helper()
	c, k := testcert.PEM(t, cert)
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
}

// touch moves the files' modification time forward, so that a rewrite
// is seen whatever the file system's time resolution.
func touch(t *testing.T, files ...string) {
	t.Helper()
	later := time.Now().Add(time.Hour)
	for _, f := range files {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
}

func serial(c *tls.Certificate) string { return c.Leaf.SerialNumber.String() }

func TestFileReloaderReloadsOnDemandAndKeepsTheOldOnError(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	first, second := ca.Server(), ca.Server()
	writePEM(t, first, certFile, keyFile)
	r, err := credentials.NewFileReloader(certFile, keyFile, 0)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, second, certFile, keyFile)
	touch(t, certFile, keyFile)
	if got := serial(r.Certificate()); got != serial(&first) {
		t.Fatalf("without a check interval the files were re-read before Reload: serial %s", got)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serial(r.Certificate()); got != serial(&second) {
		t.Fatalf("after Reload: serial %s, want %s", got, serial(&second))
	}
	// A half-written rotation: the new certificate with the old key.
	c, _ := testcert.PEM(t, first)
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("Reload of a certificate with another key's file succeeded")
	}
	if got := serial(r.Certificate()); got != serial(&second) {
		t.Errorf("a failed reload replaced the certificate: serial %s", got)
	}
	if _, err := credentials.NewFileReloader(filepath.Join(dir, "none"), keyFile, 0); err == nil {
		t.Error("NewFileReloader of a missing file succeeded")
	}
}

func TestFileReloaderPicksUpChangedFilesOnHandshake(t *testing.T) {
	ca := testcert.NewCA(t, "test CA")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	first, second := ca.Server(), ca.Server()
	writePEM(t, first, certFile, keyFile)
	r, err := credentials.NewFileReloader(certFile, keyFile, time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, second, certFile, keyFile)
	touch(t, certFile, keyFile)
	got, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if serial(got) != serial(&second) {
		t.Errorf("handshake after the files changed got serial %s, want %s", serial(got), serial(&second))
	}
	cc, _ := r.GetClientCertificate(nil)
	if serial(cc) != serial(&second) {
		t.Errorf("GetClientCertificate got serial %s, want %s", serial(cc), serial(&second))
	}
}
