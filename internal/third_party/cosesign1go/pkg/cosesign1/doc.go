// Package cosesign1 is opengcs's stand-in for the cosesign1 package that hcsshim's
// security policy code imports: COSE_Sign1 unpacking with x5chain and did:x509
// issuer checks. See the README beside go.mod for what it does and does not cover.
package cosesign1
