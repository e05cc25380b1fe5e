/* Unit tests: the JSON text of MANIFEST.json and /status (snap/manifest.c). */
#include "autoconf.h"

#include <string.h>
#include <json-glib/json-glib.h>

#include "snap/manifest.h"

static void test_numbers_are_short(void)
{
	g_autoptr(JsonBuilder) b = json_builder_new();
	g_autoptr(JsonNode) root = NULL;
	g_autofree char *text = NULL;
	g_autoptr(JsonParser) parser = json_parser_new();
	JsonObject *o;

	json_builder_begin_object(b);
	json_builder_set_member_name(b, "hold");
	json_builder_add_double_value(b, 311.308);
	json_builder_set_member_name(b, "tiny");
	json_builder_add_double_value(b, 0.1);
	json_builder_set_member_name(b, "count");
	json_builder_add_int_value(b, 1234567890123);
	json_builder_set_member_name(b, "note \"1.30799999999999\"");
	json_builder_add_string_value(b, "3.14159265358979 stays \\ as written");
	json_builder_end_object(b);
	root = json_builder_get_root(b);
	text = kfs_json_to_text(root);

	g_assert_nonnull(strstr(text, "311.308"));
	g_assert_null(strstr(text, "311.3079"));
	g_assert_nonnull(strstr(text, ": 0.1"));
	g_assert_nonnull(strstr(text, "1234567890123"));
	g_assert_nonnull(strstr(text, "3.14159265358979 stays"));
	g_assert_true(text[strlen(text) - 1] == '\n');
	/* and it is still the same JSON */
	g_assert_true(json_parser_load_from_data(parser, text, -1, NULL));
	o = json_node_get_object(json_parser_get_root(parser));
	g_assert_cmpfloat(json_object_get_double_member(o, "hold"), ==, 311.308);
	g_assert_cmpfloat(json_object_get_double_member(o, "tiny"), ==, 0.1);
	g_assert_cmpint(json_object_get_int_member(o, "count"), ==, 1234567890123);
	g_assert_cmpstr(json_object_get_string_member(o, "note \"1.30799999999999\""), ==,
			"3.14159265358979 stays \\ as written");
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/json/numbers-are-short", test_numbers_are_short);
	return g_test_run();
}
