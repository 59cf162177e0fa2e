module github.com/Microsoft/cosesign1go

go 1.24

require (
	github.com/Microsoft/didx509go v0.0.3
	github.com/veraison/go-cose v1.3.0
)
