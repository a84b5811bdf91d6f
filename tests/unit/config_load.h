/*
 * config_load.h - the configuration tests' loaders: YAML (or JSON) text in a string literal,
 * loaded with pt_config_load_buf under the name "t.yaml", expected to load or to fail with
 * its messages in errbuf. For cmocka tests (included after cmocka.h).
 */
#ifndef PT_TESTS_CONFIG_LOAD_H
#define PT_TESTS_CONFIG_LOAD_H

#include <stdio.h>
#include <string.h>

#include "config/config.h"

static char errbuf[8192];

/* The configuration yaml makes; fails the test with the messages when it does not load. */
static struct pt_config *load_ok(const char *yaml)
{
    struct pt_config *cfg = NULL;
    int rc = pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, errbuf, sizeof(errbuf));
    if (rc != 0)
        fprintf(stderr, "unexpected errors:\n%s\n", errbuf);
    assert_int_equal(rc, 0);
    assert_non_null(cfg);
    return cfg;
}

/* The messages of yaml's failed load (errbuf); fails the test when it loads. */
static const char *load_err(const char *yaml)
{
    struct pt_config *cfg = NULL;
    int rc = pt_config_load_buf("t.yaml", yaml, strlen(yaml), &cfg, errbuf, sizeof(errbuf));
    assert_true(rc < 0);
    assert_null(cfg);
    return errbuf;
}

/* Fails with the whole error text when needle is not in it. */
static void expect_has(const char *err, const char *needle)
{
    if (!strstr(err, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, err);
}

#endif
