package policy

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/Microsoft/cosesign1go/pkg/cosesign1"
	didx509resolver "github.com/Microsoft/didx509go/pkg/did-x509-resolver"
	"github.com/Microsoft/hcsshim/pkg/securitypolicy"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// MediaTypeFragment is the media type of a Rego policy fragment (also
// assumed when the host sends none).
const MediaTypeFragment = "application/cose-x509+rego"

// InjectFragment checks a SecurityPolicyFragment as the reference does and
// offers it to the policy:
//  1. the COSE_Sign1 document verifies against the leaf of its own x5chain,
//     and the chain is sound;
//  2. its issuer (did:x509) resolves against that chain, and it names a feed;
//  3. the policy accepts that issuer, feed and SVN (LoadFragment).
//
// Other media types (trust lists, reference info blobs) are refused: this
// gcs does not support transparency receipts.
func (e *Enforcer) InjectFragment(ctx context.Context, f prot.SecurityPolicyFragment) error {
	if f.MediaType != "" && f.MediaType != MediaTypeFragment {
		return prot.NewError(prot.HrFail, fmt.Errorf("%w: unsupported media type %q", ErrFragment, f.MediaType))
	}
	raw, err := base64.StdEncoding.DecodeString(f.Fragment)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("%w: failed to decode fragment: %w", ErrFragment, err))
	}
	doc, err := cosesign1.UnpackAndValidateCOSE1CertChain(raw)
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("%w: InjectFragment failed COSE validation: %w", ErrFragment, err))
	}
	if doc.Issuer == "" || doc.Feed == "" {
		return prot.NewError(prot.HrFail, fmt.Errorf("%w: the COSE_Sign1 protected header must carry both an issuer and a feed", ErrFragment))
	}
	// did:x509 names a CA of the chain by fingerprint, so the chain has a
	// leaf and at least one CA. didx509go panics on a one-certificate chain
	// (found by FuzzInjectFragment), so that case never reaches it.
	if len(doc.CertChain) < 2 {
		return prot.NewError(prot.HrFail, fmt.Errorf("%w: failed to resolve DID: the x5chain has %d certificate(s), a did:x509 issuer needs a CA", ErrFragment, len(doc.CertChain)))
	}
	if err := resolveDID(doc.ChainPem, doc.Issuer); err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("%w: failed to resolve DID: %w", ErrFragment, err))
	}
	var svn *int64
	if claims, ok := doc.Protected[cosesign1.COSE_Header_CWTClaims].(map[any]any); ok {
		if v, ok := claims["svn"]; ok {
			n, err := toInt64(v)
			if err != nil {
				return prot.NewError(prot.HrFail, fmt.Errorf("%w: svn: %w", ErrFragment, err))
			}
			svn = &n
		}
	}
	err = e.eval(func(p securitypolicy.SecurityPolicyEnforcer) error {
		return p.LoadFragment(ctx, securitypolicy.LoadFragmentOptions{
			Issuer: doc.Issuer, Feed: doc.Feed, HeaderSVN: svn, Rego: string(doc.Payload), Receipts: doc.Receipts,
		})
	})
	if err != nil {
		return prot.NewError(prot.HrFail, fmt.Errorf("error loading security policy fragment: %w", err))
	}
	e.log.WithFields(map[string]any{"issuer": doc.Issuer, "feed": doc.Feed}).Info("security policy fragment loaded")
	return nil
}

func toInt64(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case uint64:
		if n > 1<<63-1 {
			return 0, fmt.Errorf("%d overflows int64", n)
		}
		return int64(n), nil
	case int:
		return int64(n), nil
	}
	return 0, fmt.Errorf("%T is not an integer", v)
}

// resolveDID checks that the did:x509 issuer matches the chain. A panic in
// the resolver on hostile input is turned into an error: the gcs keeps
// serving.
func resolveDID(chainPEM, did string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("did:x509 resolver failed: %v", r)
		}
	}()
	_, err = didx509resolver.Resolve(chainPEM, did, true)
	return err
}
