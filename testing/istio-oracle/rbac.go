package oracle

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbac "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	httprbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	netrbac "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// evaluateChainRBAC runs the chain's network RBAC filters, then (for HTTP) the
// HCM's RBAC filters, in order, as Envoy does: the first that denies decides.
// Returns "deny" and the policy that decided, or "allow" (with the ALLOW policy
// that matched, if any).
func evaluateChainRBAC(chain *listener.FilterChain, r request, h *hcm.HttpConnectionManager) (string, string) {
	var allowedBy string
	for _, f := range chain.GetFilters() {
		config := &netrbac.RBAC{}
		if unpack(f.GetTypedConfig(), config) {
			if decision, policy := evaluate(config.GetRules(), r, false); decision == "deny" {
				return decision, policy
			} else if policy != "" {
				allowedBy = policy
			}
		}
	}
	if h != nil {
		for _, f := range h.GetHttpFilters() {
			config := &httprbac.RBAC{}
			if unpack(f.GetTypedConfig(), config) {
				if decision, policy := evaluate(config.GetRules(), r, true); decision == "deny" {
					return decision, policy
				} else if policy != "" {
					allowedBy = policy
				}
			}
		}
	}
	return "allow", allowedBy
}

// unpack reads a typed_config when it holds the given message type.
func unpack[T proto.Message](a *anypb.Any, into T) bool {
	return a != nil && a.MessageIs(into) && a.UnmarshalTo(into) == nil
}

// evaluate applies one RBAC config (config.rbac.v3.RBAC): ALLOW admits when a policy
// matches, DENY refuses when one does, LOG never decides. Policies are tried in name
// order so the one reported is stable.
func evaluate(rules *rbac.RBAC, r request, http bool) (string, string) {
	if rules == nil {
		return "allow", ""
	}
	names := make([]string, 0, len(rules.GetPolicies()))
	for name := range rules.GetPolicies() {
		names = append(names, name)
	}
	sort.Strings(names)
	matched := ""
	for _, name := range names {
		if policyMatches(rules.GetPolicies()[name], r, http) {
			matched = name
			break
		}
	}
	switch rules.GetAction() {
	case rbac.RBAC_ALLOW:
		if matched == "" {
			return "deny", "(no ALLOW policy matched)"
		}
		return "allow", matched
	case rbac.RBAC_DENY:
		if matched != "" {
			return "deny", matched
		}
	}
	return "allow", ""
}

func policyMatches(p *rbac.Policy, r request, http bool) bool {
	permitted := false
	for _, permission := range p.GetPermissions() {
		if permissionMatches(permission, r, http) {
			permitted = true
			break
		}
	}
	if !permitted {
		return false
	}
	for _, principal := range p.GetPrincipals() {
		if principalMatches(principal, r, http) {
			return true
		}
	}
	return false
}

// permissionMatches follows config.rbac.v3.Permission. On a network (TCP) filter,
// HTTP attributes are absent, so header and path rules do not match.
func permissionMatches(p *rbac.Permission, r request, http bool) bool {
	switch rule := p.GetRule().(type) {
	case *rbac.Permission_Any:
		return rule.Any
	case *rbac.Permission_AndRules:
		for _, sub := range rule.AndRules.GetRules() {
			if !permissionMatches(sub, r, http) {
				return false
			}
		}
		return true
	case *rbac.Permission_OrRules:
		for _, sub := range rule.OrRules.GetRules() {
			if permissionMatches(sub, r, http) {
				return true
			}
		}
		return false
	case *rbac.Permission_NotRule:
		return !permissionMatches(rule.NotRule, r, http)
	case *rbac.Permission_Header:
		return http && headerMatches(rule.Header, r.headers)
	case *rbac.Permission_UrlPath:
		return http && pathMatches(rule.UrlPath, r.path)
	case *rbac.Permission_DestinationPort:
		return int(rule.DestinationPort) == r.port
	case *rbac.Permission_DestinationPortRange:
		return int32(r.port) >= rule.DestinationPortRange.GetStart() && int32(r.port) < rule.DestinationPortRange.GetEnd()
	case *rbac.Permission_RequestedServerName:
		return stringMatches(rule.RequestedServerName, r.sni)
	case *rbac.Permission_DestinationIp:
		return false
	}
	// Metadata and extension matchers read state these calls do not carry.
	return false
}

// principalMatches follows config.rbac.v3.Principal; the peer's identity is its
// certificate's URI SAN (spiffe://...), as Envoy's `authenticated` reads it.
func principalMatches(p *rbac.Principal, r request, http bool) bool {
	switch id := p.GetIdentifier().(type) {
	case *rbac.Principal_Any:
		return id.Any
	case *rbac.Principal_AndIds:
		for _, sub := range id.AndIds.GetIds() {
			if !principalMatches(sub, r, http) {
				return false
			}
		}
		return true
	case *rbac.Principal_OrIds:
		for _, sub := range id.OrIds.GetIds() {
			if principalMatches(sub, r, http) {
				return true
			}
		}
		return false
	case *rbac.Principal_NotId:
		return !principalMatches(id.NotId, r, http)
	case *rbac.Principal_Authenticated_:
		if r.principal == "" {
			return false
		}
		return id.Authenticated.GetPrincipalName() == nil || stringMatches(id.Authenticated.GetPrincipalName(), r.principal)
	case *rbac.Principal_FilterState:
		if strings.Contains(id.FilterState.GetKey(), "peer_principal") && r.principal != "" {
			return stringMatches(id.FilterState.GetStringMatch(), r.principal)
		}
		return false
	case *rbac.Principal_DirectRemoteIp:
		return cidrContains(id.DirectRemoteIp, r.sourceIP)
	case *rbac.Principal_RemoteIp:
		return cidrContains(id.RemoteIp, r.sourceIP)
	case *rbac.Principal_SourceIp:
		return cidrContains(id.SourceIp, r.sourceIP)
	case *rbac.Principal_Header:
		return http && headerMatches(id.Header, r.headers)
	case *rbac.Principal_UrlPath:
		return http && pathMatches(id.UrlPath, r.path)
	}
	// Metadata (request.auth.*) needs a validated JWT, which these calls do not carry.
	return false
}

func pathMatches(m *matcher.PathMatcher, path string) bool {
	withoutQuery, _, _ := strings.Cut(path, "?")
	return stringMatches(m.GetPath(), withoutQuery)
}

func cidrContains(c *core.CidrRange, address string) bool {
	prefix, err := netip.ParsePrefix(c.GetAddressPrefix() + "/" + strconv.Itoa(int(c.GetPrefixLen().GetValue())))
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(address)
	return err == nil && prefix.Contains(ip)
}
