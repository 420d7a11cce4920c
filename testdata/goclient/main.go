// Command goclient is the Go program the end-to-end tests run under cloak:
// a plain net/http client, which takes its proxy from HTTPS_PROXY and, on
// Linux, its trust store from SSL_CERT_FILE.
//
//	goclient URL [HEADER-ENV]
//
// It sends "Authorization: Bearer $HEADER-ENV" when HEADER-ENV is given and
// prints the status and body.
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: goclient URL [HEADER-ENV]")
		os.Exit(2)
	}
	req, err := http.NewRequest(http.MethodGet, os.Args[1], nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(os.Args) > 2 {
		req.Header.Set("Authorization", "Bearer "+os.Getenv(os.Args[2]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("status %d %s", resp.StatusCode, body)
	if resp.StatusCode != http.StatusOK {
		os.Exit(1)
	}
}
