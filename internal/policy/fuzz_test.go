package policy

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/opengcs/opengcs/service/gcs/prot"
)

// FuzzInjectFragment feeds arbitrary documents to the fragment check (the
// COSE_Sign1 decoder, x5chain parsing, did:x509 resolution). Whatever the
// bytes, the answer is nil or an E_FAIL prot.Error, never a panic. The
// seed corpus holds well-formed documents (single certificate with iss and
// feed headers; certificate array with CWT claims) and broken ones.
func FuzzInjectFragment(f *testing.F) {
	f.Fuzz(func(t *testing.T, doc []byte) {
		e := OpenDoor()
		err := e.InjectFragment(context.Background(), prot.SecurityPolicyFragment{Fragment: base64.StdEncoding.EncodeToString(doc)})
		if err == nil {
			return
		}
		var pe *prot.Error
		if !errors.As(err, &pe) || pe.Result != prot.HrFail {
			t.Fatalf("error %v is not an E_FAIL prot.Error", err)
		}
	})
}
