"""The fast rendering path must produce exactly python-liquid's output."""

from hypothesis import given, settings, strategies as st
from liquid import Environment

from activities.liquid_fast_path import compile_fast
from activities.rendering import render

liquid = Environment()
names = st.sampled_from(["name", "plan", "size", "first", "last", "points", "city", "missing"])
values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32)
    | st.text(alphabet="ab <&'\"é", max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(names, children, max_size=3),
    max_leaves=8)
contexts = st.fixed_dictionaries({"profile": st.dictionaries(names, values, max_size=5),
                                  "unsubscribe_url": st.text(max_size=5)})
paths = st.lists(names, min_size=0, max_size=3).map(lambda rest: ".".join(["profile", *rest]))
outputs = st.one_of(
    paths.map(lambda p: "{{ " + p + " }}"),
    paths.map(lambda p: "{{- " + p + " -}}"),
    st.tuples(paths, st.text(alphabet="xy ", max_size=3)).map(lambda t: "{{ " + t[0] + " | default: '" + t[1] + "' }}"),
    st.just("{{ unsubscribe_url }}"),
    paths.map(lambda p: "{{ " + p + " | upcase }}"),  # outside the fast shape: python-liquid
    paths.map(lambda p: "{% if " + p + " %}yes{% endif %}"),
)
templates = st.lists(st.one_of(st.text(alphabet="Hi, \n", max_size=4), outputs), max_size=5).map("".join)


@settings(max_examples=400, deadline=None)
@given(templates, contexts)
def test_fast_path_renders_like_python_liquid(source, context):
    assert render(source, context) == liquid.from_string(source).render(**context)


def test_the_usual_message_shape_takes_the_fast_path():
    assert compile_fast(liquid.from_string("Hi {{ profile.attributes.first_name | default: 'there' }}, "
                                           "<a href='{{ unsubscribe_url }}'>stop</a>")) is not None
    assert compile_fast(liquid.from_string("{% for x in items %}{{ x }}{% endfor %}")) is None
