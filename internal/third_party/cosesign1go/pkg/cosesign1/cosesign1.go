package cosesign1

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	didx509resolver "github.com/Microsoft/didx509go/pkg/did-x509-resolver"
	"github.com/veraison/go-cose"
)

// COSE_Header_CWTClaims is the protected header label of the CWT claims map.
//
//nolint:revive // the name is the one callers compile against.
const COSE_Header_CWTClaims int64 = 15

// CWT claim keys inside COSE_Header_CWTClaims.
const (
	cwtIssuer  int64 = 1
	cwtSubject int64 = 2
)

// maxChainLength bounds the x5chain a document may carry.
const maxChainLength = 100

// ErrReceiptsUnsupported is returned for every transparency receipt or trust
// list operation: this stand-in does not implement them.
var ErrReceiptsUnsupported = errors.New("cosesign1: transparency receipts and trust lists are not supported by this build")

// ParsedCOSEReceipt is a transparency receipt attached to a COSE_Sign1
// document. This build never produces one.
type ParsedCOSEReceipt struct {
	Issuer string
	Kid    string
}

// Validate always fails: receipts are not supported.
func (ParsedCOSEReceipt) Validate(map[string]crypto.PublicKey) error {
	return ErrReceiptsUnsupported
}

// ParseTTLPayload always fails: transparency trust lists are not supported.
func ParseTTLPayload([]byte) (map[string]map[string]crypto.PublicKey, error) {
	return nil, ErrReceiptsUnsupported
}

// UnpackedCoseSign1 is a checked COSE_Sign1 document.
type UnpackedCoseSign1 struct {
	Issuer      string
	Feed        string
	ContentType string
	ChainPem    string
	Payload     []byte
	CertChain   []*x509.Certificate
	Protected   cose.ProtectedHeader
	Unprotected cose.UnprotectedHeader
	Receipts    []ParsedCOSEReceipt
}

// UnpackAndValidateCOSE1CertChain decodes raw as a COSE_Sign1 document and
// checks that its certificate chain is sound and that the leaf certificate's
// key made the signature. Whether the issuer is acceptable is the caller's
// business (did:x509 resolution and the policy).
func UnpackAndValidateCOSE1CertChain(raw []byte) (*UnpackedCoseSign1, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		return nil, fmt.Errorf("decoding COSE_Sign1: %w", err)
	}
	protected := msg.Headers.Protected
	alg, err := protected.Algorithm()
	if err != nil {
		return nil, fmt.Errorf("COSE_Sign1 algorithm: %w", err)
	}
	chain, err := certChain(protected[cose.HeaderLabelX5Chain])
	if err != nil {
		return nil, err
	}
	if len(chain) > 1 {
		if _, err := didx509resolver.VerifyCertificateChain(chain, chain[len(chain)-1:], false); err != nil {
			return nil, fmt.Errorf("certificate chain verification failed: %w", err)
		}
	}
	verifier, err := cose.NewVerifier(alg, chain[0].PublicKey)
	if err != nil {
		return nil, fmt.Errorf("COSE_Sign1 verifier: %w", err)
	}
	if err := msg.Verify(nil, verifier); err != nil {
		return nil, fmt.Errorf("COSE_Sign1 signature: %w", err)
	}

	out := &UnpackedCoseSign1{
		Payload:     msg.Payload,
		CertChain:   chain,
		ChainPem:    chainPEM(chain),
		Protected:   protected,
		Unprotected: msg.Headers.Unprotected,
		ContentType: stringEntry(map[any]any(protected), cose.HeaderLabelContentType),
	}
	if raw, ok := protected[COSE_Header_CWTClaims]; ok {
		claims, ok := raw.(map[any]any)
		if !ok {
			return nil, fmt.Errorf("CWT claims header is %T, not a map", raw)
		}
		out.Issuer = stringEntry(claims, cwtIssuer)
		out.Feed = stringEntry(claims, cwtSubject)
	} else {
		out.Issuer = stringEntry(map[any]any(protected), "iss")
		out.Feed = stringEntry(map[any]any(protected), "feed")
	}
	return out, nil
}

// certChain parses the x5chain header: one DER certificate or an array of
// them, leaf first.
func certChain(v any) ([]*x509.Certificate, error) {
	var ders [][]byte
	switch c := v.(type) {
	case nil:
		return nil, errors.New("COSE_Sign1 has no x5chain in its protected header")
	case []byte:
		ders = [][]byte{c}
	case []any:
		for i, e := range c {
			b, ok := e.([]byte)
			if !ok {
				return nil, fmt.Errorf("x5chain entry %d is %T, not bytes", i, e)
			}
			ders = append(ders, b)
		}
	default:
		return nil, fmt.Errorf("x5chain is %T, not bytes or an array", v)
	}
	if len(ders) == 0 || len(ders) > maxChainLength {
		return nil, fmt.Errorf("x5chain has %d certificates", len(ders))
	}
	chain := make([]*x509.Certificate, 0, len(ders))
	for i, der := range ders {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5chain certificate %d: %w", i, err)
		}
		chain = append(chain, cert)
	}
	return chain, nil
}

func chainPEM(chain []*x509.Certificate) string {
	parts := make([]string, 0, len(chain))
	for _, c := range chain {
		parts = append(parts, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	return strings.Join(parts, "\n")
}

func stringEntry(m map[any]any, k any) string {
	s, _ := m[k].(string)
	return s
}
