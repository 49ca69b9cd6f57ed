"""The service layer: admission, the turn and every chat command, for every face.

Layers, top to bottom: faces (bot/telegram, bot/terminal.py, the Mini App) → this
package → the engine and memory features → storage classes. A face resolves who is
talking and where into a `Place`, calls one `CompanionService` method, and renders
what comes back; texts come back as `Notice`s (keys of the face's catalogue,
bot/texts.py), so every face says the same thing in the same words.

    admission.py  access (allowlist, admins, open bot), the daily budget, screening
    facade.py     CompanionService: the turn with its replay rules, and the commands
    results.py    Place, Notice, TurnOutcome and the other results
    zones.py      time zones as people write and read them (+8, UTC+08:00)

Commands and their calls:

    message          say(place, text, sink=...)        edit  edit(place, id, text)
    /retry           retry(place)   /prev /next, ◀ ▶   alternative(place, reply_id)
    use this one     use_alternative(place, reply_id)  /continue  continue_reply(place)
    /undo            undo(place)                       /new   new_conversation(place)
    /history         conversations(place), resume()    recent(place)
    /context         context(place)                    /search  search(place, query)
    /memory          facts(place)                      add_fact / edit_fact / delete_fact
    /export          export(place)                     /forget  forget(place)
    /persona         personas(place), switch_persona(place, wanted), switch_to(place, id)
    /docs            documents(place), attach / detach / toggle_document(place, id)
    reading a file   read_bytes / read_path / read_link(place, ...): stored and attached
    /characters      novel(place), characters(place), listed_character, play_character
    /asof N          plan_timeline + apply_timeline, or set_timeline(place, arg)
    /model           model_menu(place), current_model(place), choose_model(place, wanted)
    /lang            set_language(place, choice)       /tz  timezone(place, value)
    /checkin         checkin(place, args)              /voice  voice_replies(place, choice)
    /usage           usage(place)                      /me  set_me(place, ...)
    crash replay     replay(place, platform_id), delivered(reply_id, platform_id), recover()
    access           arrive(platform, id), admit(user), is_admin(user), user_left(user)
    check-ins        due_checkins(), write_checkin(claim), checkin_sent(claim, ...)
    /stats, /allow   stats(), allow(platform, id)      /publish  unpublished()
"""

from memory.service.admission import Admission, Policy
from memory.service.facade import CompanionService, TimelinePlan, VoiceAbility, short
from memory.service.results import *  # noqa: F403 - the result types, listed in results.__all__
from memory.service.results import __all__ as _results
from memory.service.zones import offset_text, parse_zone, zone_label

__all__ = ["Admission", "CompanionService", "Policy", "TimelinePlan", "VoiceAbility", "offset_text", "parse_zone",
           "short", "zone_label", *_results]
