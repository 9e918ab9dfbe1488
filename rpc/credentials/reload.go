package credentials

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"
)

// FileReloader serves a certificate and key from PEM files that may be
// replaced while the process runs (rotated certificates). Plug its
// methods into a tls.Config given to NewTLS: GetCertificate on a server,
// GetClientCertificate on a client. Every new handshake gets the newest
// certificate; established connections keep theirs.
//
// The files are read when the FileReloader is made, on Reload, and on a
// handshake when at least the check interval has passed since the last
// check and either file's modification time or size changed. A reload
// that fails (a half-written file, a key that does not match) keeps the
// previous certificate: Reload reports the error, a handshake does not.
// Replace both files before the next check, or call Reload once both are
// in place. A FileReloader starts no goroutine.
type FileReloader struct {
	certFile, keyFile string
	interval          time.Duration

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	lastCheck time.Time
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// NewFileReloader loads the PEM certificate chain in certFile and its
// key in keyFile, and checks them for changes at most every interval on
// handshakes (0 or less: only on Reload).
func NewFileReloader(certFile, keyFile string, interval time.Duration) (*FileReloader, error) {
	r := &FileReloader{certFile: certFile, keyFile: keyFile, interval: interval}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the files now. On error the previous certificate stays.
func (r *FileReloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked()
}

func (r *FileReloader) reloadLocked() error {
	r.lastCheck = time.Now()
	cs, err1 := stamp(r.certFile)
	ks, err2 := stamp(r.keyFile)
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("credentials: reloading %s and %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert = &cert
	if err1 == nil && err2 == nil {
		r.certStamp, r.keyStamp = cs, ks
	}
	return nil
}

// Certificate returns the current certificate, first re-reading the
// files if the check interval passed and they changed.
func (r *FileReloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.interval > 0 && time.Since(r.lastCheck) >= r.interval {
		r.lastCheck = time.Now()
		cs, err1 := stamp(r.certFile)
		ks, err2 := stamp(r.keyFile)
		if err1 == nil && err2 == nil && (cs != r.certStamp || ks != r.keyStamp) {
			_ = r.reloadLocked() // a failed reload keeps the old certificate
		}
	}
	return r.cert
}

// GetCertificate is for tls.Config.GetCertificate (servers).
func (r *FileReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate is for tls.Config.GetClientCertificate (clients
// under mutual TLS).
func (r *FileReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}
