//go:build rego

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"testing"
	"time"

	"github.com/Microsoft/hcsshim/pkg/securitypolicy"
	"github.com/veraison/go-cose"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// fragmentSigner is a test CA and a leaf it issued, whose did:x509 names
// the CA by fingerprint and the leaf by subject CN.
type fragmentSigner struct {
	leafKey *ecdsa.PrivateKey
	chain   [][]byte // leaf first
	did     string
}

func newFragmentSigner(t *testing.T) *fragmentSigner {
	t.Helper()
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "opengcs-test-root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "opengcs-fragment-signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &leafKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	fp := sha256.Sum256(rootDER)
	did := "did:x509:0:sha256:" + base64.RawURLEncoding.EncodeToString(fp[:]) + "::subject:CN:opengcs-fragment-signer"
	return &fragmentSigner{leafKey: leafKey, chain: [][]byte{leafDER, rootDER}, did: did}
}

// sign returns payload as a COSE_Sign1 document with the x5chain, issuer
// (claimed: issuer) and feed in its protected header.
func (f *fragmentSigner) sign(t *testing.T, issuer, feed string, payload []byte) []byte {
	t.Helper()
	signer, err := cose.NewSigner(cose.AlgorithmES256, f.leafKey)
	if err != nil {
		t.Fatal(err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
	msg.Headers.Protected[cose.HeaderLabelContentType] = "application/unknown+rego"
	chain := make([]any, len(f.chain))
	for i, c := range f.chain {
		chain[i] = c
	}
	msg.Headers.Protected[cose.HeaderLabelX5Chain] = chain
	msg.Headers.Protected["iss"] = issuer
	msg.Headers.Protected["feed"] = feed
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		t.Fatal(err)
	}
	raw, err := msg.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestPolicyFragment: a policy that trusts fragments of one did:x509 issuer
// and feed for its external processes. A tampered fragment and one whose
// issuer does not match its chain are refused; the genuine one is loaded
// and allows what it adds.
func TestPolicyFragment(t *testing.T) {
	const feed = "opengcs/test-fragment"
	signer := newFragmentSigner(t)
	stranger := newFragmentSigner(t)

	s := newStorageEnvArgs(t)
	pol := regoPolicy(t, policyOpts{
		fragments: []securitypolicy.FragmentConfig{{Issuer: signer.did, Feed: feed, MinimumSVN: "1", Includes: []string{"external_processes"}}},
	})
	if err := s.setPolicy("rego", pol, ""); err != nil {
		t.Fatalf("policy: %v", err)
	}
	external := func() error {
		_, err := s.c.ExecuteProcess(ctxErr(t), prot.NullContainerID, &prot.ProcessParameters{IsExternal: true, CommandArgs: []string{"true"}, WorkingDirectory: "/", Environment: externalEnv}, prot.ExecuteProcessVsockStdioRelaySettings{})
		return err
	}
	denied(t, "external process before the fragment", external(), "exec is denied due to policy", "invalid command")

	rego, err := securitypolicy.MarshalFragment("opengcs_fragment", "1", nil,
		[]securitypolicy.ExternalProcessConfig{{Command: []string{"true"}, WorkingDir: "/"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	inject := func(doc []byte) error {
		return s.modify(prot.RequestTypeAdd, prot.ResourceSecurityPolicyFragment, &prot.SecurityPolicyFragment{Fragment: base64.StdEncoding.EncodeToString(doc)})
	}

	genuine := signer.sign(t, signer.did, feed, []byte(rego))
	// Tampered: one byte of the signed payload changed after signing.
	tampered := append([]byte(nil), genuine...)
	i := len(tampered) - 80 // inside the payload, before the signature
	tampered[i] ^= 0x01
	denied(t, "tampered fragment", inject(tampered), "failed COSE validation", "")
	// Signed by another CA that claims the trusted issuer.
	denied(t, "fragment from another CA", inject(stranger.sign(t, signer.did, feed, []byte(rego))), "failed to resolve DID", "")
	// The leaf alone, without the CA its did:x509 names (this crashed the
	// did:x509 resolver the reference uses; the gcs refuses it and serves on).
	leafOnly := *signer
	leafOnly.chain = signer.chain[:1]
	denied(t, "fragment without its CA", inject(leafOnly.sign(t, signer.did, feed, []byte(rego))), "failed to resolve DID", "")
	// Genuine signer, but an issuer the policy does not trust.
	denied(t, "untrusted issuer", inject(stranger.sign(t, stranger.did, feed, []byte(rego))), "error loading security policy fragment", "")
	denied(t, "external process after refused fragments", external(), "exec is denied due to policy", "invalid command")

	if err := inject(genuine); err != nil {
		t.Fatalf("genuine fragment: %v", err)
	}
	if err := external(); err != nil {
		t.Fatalf("external process the fragment allows: %v", err)
	}
}
