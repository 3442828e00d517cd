"""Reading exercise, task and designation markers from stored XML (``rallypoint.aar.marks``)."""

from __future__ import annotations

from rallypoint.aar.marks import ExerciseMark, designation_state, exercise_mark, link_uid, task_assignee, task_state
from rallypoint.aar.scope import in_scope


def test_detail_element_gives_every_field_unescaped() -> None:
    xml = (b'<event uid="u" type="b-a-o-tbl" opex="e-drill"><detail><__rallypoint_exercise id="drill"'
           b' unit="alpha-1" inject="cas&amp;12" kind="emergency" ref="t-9"/></detail></event>')
    assert exercise_mark(xml) == ExerciseMark("drill", "alpha-1", "cas&12", "emergency", "t-9")


def test_opex_alone_names_the_exercise() -> None:
    xml = b'<event version="2.0" uid="u" opex="e-night_2" type="a-f-G"><detail/></event>'
    assert exercise_mark(xml) == ExerciseMark("night_2")


def test_live_traffic_replays_and_lookalike_tags_carry_no_mark() -> None:
    assert exercise_mark(b'<event uid="u" type="a-f-G"><detail><contact callsign="A"/></detail></event>') is None
    assert exercise_mark(b'<event uid="u" opex="s-replay" type="a-f-G"><detail/></event>') is None
    # opex inside the detail (a remark quoting it) is not the event's attribute.
    assert exercise_mark(b'<event uid="u" type="a-f-G"><detail><remarks>opex="e-x"</remarks></detail></event>') is None
    assert exercise_mark(b'<event uid="u"><detail><__rallypoint_exercise_x id="x"/></detail></event>') is None
    assert exercise_mark(b'<event uid="u"><detail><__rallypoint_exercise unit="a"/></detail></event>') is None


def test_scope_keeps_the_exercise_and_live_traffic() -> None:
    assert in_scope(None, "drill") and in_scope("drill", "drill")
    assert not in_scope("other", "drill")
    assert in_scope("other", None)


def test_task_designation_and_link() -> None:
    task = (b'<event uid="rp-task-1" type="t-x-rp-task"><detail><__rallypoint_task id="1" state="assigned"'
            b' version="1" creator="c" assignee_callsign="ALPHA 1"/></detail></event>')
    assert task_state(task) == ("1", "assigned") and task_assignee(task) == "ALPHA 1"
    status = b'<event type="t-x-rp-task-s"><detail><__rallypoint_task_status id="1" state="acknowledged"/></detail>'
    assert task_state(status) == ("1", "acknowledged") and task_assignee(status) == ""
    des = b"<event><detail><__rallypoint_designation id='d1' state='approved' kind='point'/></detail></event>"
    assert designation_state(des) == ("d1", "approved")
    assert link_uid(b'<detail><link uid="ANDROID-1" relation="p-p"/></detail>') == "ANDROID-1"
    assert task_state(b"<event/>") is None and designation_state(b"<event/>") is None and link_uid(b"") == ""


def test_the_runner_note_names_what_an_api_inject_created() -> None:
    xml = (b'<event uid="RP-EX-d.inject.t1.1" type="t-x-rp-exercise" opex="e-d"><detail>'
           b'<__rallypoint_exercise id="d" unit="a1" inject="t1" kind="task"/>'
           b"<remarks>task 3f2c9a assigned</remarks></detail></event>")
    assert exercise_mark(xml) == ExerciseMark("d", "a1", "t1", "task", "3f2c9a")
    refused = xml.replace(b"task 3f2c9a assigned", b"refused: 403 forbidden")
    assert exercise_mark(refused) == ExerciseMark("d", "a1", "t1", "task", "")
    explicit = xml.replace(b'kind="task"', b'kind="task" ref="other"')
    assert exercise_mark(explicit) == ExerciseMark("d", "a1", "t1", "task", "other")
