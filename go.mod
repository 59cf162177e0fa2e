module github.com/opengcs/opengcs

go 1.26.8

require (
	github.com/linuxkit/virtsock v0.0.0-20241009230534-cb6a20cc0422
	golang.org/x/sys v0.50.0
)

require github.com/opencontainers/runtime-spec v1.3.0 // indirect
