/*
 * test_guard_waf.c - the WAF's configuration (src/config/config_waf.c) and the directives
 * Portico writes for it (src/guard/waf_rules.c): defaults, a route's waf: over its site's and
 * waf: off, every key into its directive, exclusions into SecRuleRemove/UpdateTarget, values
 * that could break out of a directive refused; and, where the CRS is installed, compiling:
 * identical waf: entries share one rule set, a bad rule is an error naming the file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config_load.h"
#include "guard/waf.h"

#define BASE "listen:\n  - addr: \":8080\"\n"

static void expect_err(const char *yaml, const char *needle)
{
    expect_has(load_err(yaml), needle);
}

static void test_defaults_and_inheritance(void **state)
{
    (void)state;
    struct pt_config *cfg = load_ok(BASE "sites:\n"
                                         "  - waf: block\n"
                                         "    routes:\n"
                                         "      - {match: /a, respond: {status: 200}}\n"
                                         "      - {match: /b, respond: {status: 200}, waf: off}\n"
                                         "      - {match: /c, respond: {status: 200},\n"
                                         "         waf: {mode: detect, paranoia: 3}}\n"
                                         "  - hosts: [other]\n"
                                         "    routes:\n"
                                         "      - {match: /, respond: {status: 200}}\n");
    const struct pt_site_cfg *s = &cfg->sites[0];
    const struct pt_waf_cfg *w = s->routes[0].waf;
    assert_non_null(w);
    assert_ptr_equal(w, s->waf); /* a route without waf: takes its site's */
    assert_int_equal(w->mode, PT_WAF_BLOCK);
    assert_int_equal(w->paranoia, 1);
    assert_int_equal(w->inbound_threshold, 5);
    assert_int_equal(w->outbound_threshold, 4);
    assert_true(w->profile_api);
    assert_int_equal(w->body_limit, 128 * 1024);
    assert_false(w->is_over_limit_pass);
    assert_false(w->inspect_response);
    assert_null(s->routes[1].waf); /* waf: off lifts the site's: one pointer test */
    assert_int_equal(s->routes[2].waf->mode, PT_WAF_DETECT);
    assert_int_equal(s->routes[2].waf->paranoia, 3);
    assert_null(cfg->sites[1].routes[0].waf);
    assert_string_equal(cfg->waf_crs_setup, "/etc/modsecurity/crs/crs-setup.conf");
    assert_string_equal(cfg->waf_crs_rules, "/usr/share/modsecurity-crs/rules");
    pt_config_free(cfg);
}

static void test_head_text(void **state)
{
    (void)state;
    struct pt_config *cfg =
        load_ok(BASE "routes:\n"
                     "  - match: /\n"
                     "    respond: {status: 200}\n"
                     "    waf: {mode: detect, paranoia: 2, body_limit: 64k,\n"
                     "          over_limit: pass, profile: none,\n"
                     "          anomaly_threshold: {inbound: 10, outbound: 8}}\n");
    const struct pt_waf_cfg *w = cfg->sites[0].routes[0].waf;
    assert_false(w->profile_api);
    char buf[8192];
    ssize_t n = pt_waf_head_text(w, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n == strlen(buf));
    expect_has(buf, "SecRuleEngine DetectionOnly\n");
    expect_has(buf, "SecRequestBodyAccess On\n");
    expect_has(buf, "SecRequestBodyLimit 65536\n");
    expect_has(buf, "SecRequestBodyNoFilesLimit 65536\n");
    expect_has(buf, "SecRequestBodyLimitAction ProcessPartial\n");
    expect_has(buf, "SecAuditEngine Off\n");
    expect_has(buf, "setvar:tx.paranoia_level=2,setvar:tx.executing_paranoia_level=2,");
    expect_has(buf, "tx.inbound_anomaly_score_threshold=10,");
    expect_has(buf, "tx.outbound_anomaly_score_threshold=8\"");
    expect_has(buf, "ctl:requestBodyProcessor=JSON");
    assert_int_equal(pt_waf_head_text(w, buf, 100), -1); /* too small: refused, not cut */
    pt_config_free(cfg);

    cfg = load_ok(BASE "routes:\n  - {match: /, respond: {status: 200}, waf: block}\n");
    n = pt_waf_head_text(cfg->sites[0].routes[0].waf, buf, sizeof(buf));
    assert_true(n > 0);
    expect_has(buf, "SecRuleEngine On\n");
    expect_has(buf, "SecRequestBodyLimitAction Reject\n");
    expect_has(buf, "setvar:tx.paranoia_level=1,");
    pt_config_free(cfg);
}

static void test_exclusions(void **state)
{
    (void)state;
    struct pt_config *cfg =
        load_ok(BASE "routes:\n"
                     "  - match: /\n"
                     "    respond: {status: 200}\n"
                     "    waf:\n"
                     "      exclude:\n"
                     "        - {id: 942100}\n"
                     "        - {id: 942100, target: \"ARGS:q\"}\n"
                     "        - {id: \"920000-920999\"}\n"
                     "        - {tag: attack-sqli}\n"
                     "        - {tag: attack-xss, target: \"REQUEST_COOKIES:/^sess/\"}\n");
    char buf[4096];
    ssize_t n = pt_waf_tail_text(cfg->sites[0].routes[0].waf, buf, sizeof(buf));
    assert_true(n > 0);
    assert_string_equal(buf,
                        "SecRuleRemoveById 942100\n"
                        "SecRuleUpdateTargetById 942100 \"!ARGS:q\"\n"
                        "SecRuleRemoveById 920000-920999\n"
                        "SecRuleRemoveByTag \"attack-sqli\"\n"
                        "SecRuleUpdateTargetByTag \"attack-xss\" \"!REQUEST_COOKIES:/^sess/\"\n");
    pt_config_free(cfg);
    cfg = load_ok(BASE "routes:\n  - {match: /, respond: {status: 200}, waf: detect}\n");
    assert_int_equal(pt_waf_tail_text(cfg->sites[0].routes[0].waf, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    pt_config_free(cfg);
}

static void test_errors(void **state)
{
    (void)state;
#define R BASE "routes:\n  - match: /\n    respond: {status: 200}\n    waf: "
    expect_err(R "maybe\n", "expected off, detect, block or a mapping");
    expect_err(R "{mode: loud}\n", "expected off, detect or block for \"mode\"");
    expect_err(R "{paranoia: 5}\n", "paranoia");
    expect_err(R "{profile: strict}\n", "expected api or none");
    expect_err(R "{over_limit: drop}\n", "expected refuse or pass");
    expect_err(R "{exclude: [{id: 0}]}\n", "expected a rule id");
    expect_err(R "{exclude: [{id: \"5-2\"}]}\n", "expected a rule id");
    expect_err(R "{exclude: [{target: \"ARGS:x\"}]}\n", "exactly one of \"id\" or \"tag\"");
    expect_err(R "{exclude: [{id: 1, tag: x}]}\n", "exactly one of \"id\" or \"tag\"");
    /* a quote would end the directive's argument: refused at load */
    expect_err(R "{exclude: [{id: 1, target: 'ARGS:\"x'}]}\n", "without spaces, quotes");
    expect_err(R "{exclude: [{tag: \"a b\"}]}\n", "without spaces, quotes");
    expect_err(R "{rules: [/nonexistent/rules.conf]}\n", "rules");
    expect_err(R "{colour: red}\n", "colour");
    expect_err(R "{inspect_response: true}\n", "not supported yet");
#undef R
}

static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof(path), "/tmp/pt_test_waf_%d_%s", (int)getpid(), name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_build(void **state)
{
    (void)state;
    if (access("/usr/share/modsecurity-crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf", R_OK) !=
        0)
        skip();
    const char *bad = write_tmp("bad.conf", "SecRule ARGS \"@rx x\" \"id:1,phase:2,bogus\"\n");
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             BASE "sites:\n"
                  "  - waf: {paranoia: 2}\n"
                  "    routes:\n"
                  "      - {match: /a, respond: {status: 200}}\n"
                  "      - {match: /b, respond: {status: 200}, waf: {paranoia: 2}}\n"
                  "      - {match: /c, respond: {status: 200}, waf: {paranoia: 3}}\n"
                  "  - hosts: [x]\n"
                  "    routes:\n"
                  "      - {match: /, respond: {status: 200}, waf: {rules: [%s]}}\n",
             bad);
    struct pt_config *cfg = load_ok(yaml);
    char err[2048] = "";
    assert_int_equal(pt_waf_build(cfg, false, err, sizeof(err)), -1);
    expect_has(err, "waf: the rules \"");
    expect_has(err, "bad.conf\" do not load: ");
    expect_has(err, "bogus");
    pt_waf_release(cfg);
    pt_config_free(cfg);

    snprintf(yaml, sizeof(yaml),
             BASE "sites:\n"
                  "  - waf: {paranoia: 2}\n"
                  "    routes:\n"
                  "      - {match: /a, respond: {status: 200}}\n"
                  "      - {match: /b, respond: {status: 200}, waf: {paranoia: 2}}\n"
                  "      - {match: /c, respond: {status: 200}, waf: {paranoia: 3}}\n");
    cfg = load_ok(yaml);
    assert_int_equal(pt_waf_build(cfg, false, err, sizeof(err)), 0);
    const struct pt_site_cfg *s = &cfg->sites[0];
    assert_non_null(s->routes[0].waf->compiled);
    /* the site's and /b's are the same configuration: one rule set */
    assert_ptr_equal(s->routes[0].waf->compiled, s->routes[1].waf->compiled);
    assert_ptr_not_equal(s->routes[0].waf->compiled, s->routes[2].waf->compiled);
    pt_waf_release(cfg);
    pt_config_free(cfg);
    unlink(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_inheritance),
        cmocka_unit_test(test_head_text),
        cmocka_unit_test(test_exclusions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
