// Package falcon is what both Falcon sources share: the OAuth2 client
// credentials flow (golang.org/x/oauth2/clientcredentials), cloud selection
// and autodiscovery, the API rate limits and errors that name their cause.
// See contracts/falcon.md.
package falcon

import (
	"fmt"
	"slices"
	"strings"
)

// Cloud names accepted by Config.Cloud.
const (
	CloudAuto   = "auto"
	CloudUS1    = "us-1"
	CloudUS2    = "us-2"
	CloudEU1    = "eu-1"
	CloudUSGov1 = "us-gov-1"
	CloudUSGov2 = "us-gov-2"
)

// Clouds maps each cloud to its API base URL.
var Clouds = map[string]string{
	CloudUS1:    "https://api.crowdstrike.com",
	CloudUS2:    "https://api.us-2.crowdstrike.com",
	CloudEU1:    "https://api.eu-1.crowdstrike.com",
	CloudUSGov1: "https://api.laggar.gcw.crowdstrike.com",
	CloudUSGov2: "https://api.us-gov-2.crowdstrike.mil",
}

// CloudNames lists the values of the cloud key, auto first.
func CloudNames() []string {
	names := []string{CloudAuto}
	for n := range Clouds {
		names = append(names, n)
	}
	slices.Sort(names[1:])
	return names
}

// regionCloud maps an X-Cs-Region header value to a cloud name ("" when
// unknown). Falcon sends "us-1", "us-2", "eu-1", "us-gov-1"; the match is
// case-insensitive and also accepts "usgov1"-style spellings.
func regionCloud(region string) string {
	r := strings.ToLower(strings.TrimSpace(region))
	if _, ok := Clouds[r]; ok {
		return r
	}
	compact := strings.ReplaceAll(r, "-", "")
	for name := range Clouds {
		if strings.ReplaceAll(name, "-", "") == compact {
			return name
		}
	}
	return ""
}

// baseURL resolves the API base URL of a configuration: base_url wins, then
// the cloud (auto starts at us-1), using hosts for the cloud table.
func baseURL(cloud, override string, hosts map[string]string) (string, error) {
	if override != "" {
		return strings.TrimRight(override, "/"), nil
	}
	if cloud == CloudAuto || cloud == "" {
		cloud = CloudUS1
	}
	u, ok := hosts[cloud]
	if !ok {
		return "", fmt.Errorf("unknown Falcon cloud %q (clouds: %s)", cloud, strings.Join(CloudNames(), ", "))
	}
	return strings.TrimRight(u, "/"), nil
}
