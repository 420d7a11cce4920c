package ca

// rootPaths are the PEM bundles found on macOS. The system trust store itself
// is the keychain, which is not a file; /etc/ssl/cert.pem is the export the
// OS ships, and the others come from Homebrew's OpenSSL.
var rootPaths = []string{
	"/etc/ssl/cert.pem",
	"/usr/local/etc/openssl/cert.pem",
	"/opt/homebrew/etc/openssl@3/cert.pem",
	"/usr/local/etc/openssl@3/cert.pem",
}

// unsupported is empty: macOS is supported.
const unsupported = ""
