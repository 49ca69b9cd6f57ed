"""Jobs in a chat: who may cancel them, and how their failures read."""

from bot.telegram.jobs import ActiveJobs, document_error_text
from memory.documents import DocumentError, ErrorCode


def test_only_the_user_who_started_a_job_can_cancel_it():
    jobs = ActiveJobs()
    job = jobs.start(user_id=7)
    other = jobs.start(user_id=8)
    assert job.id != other.id
    assert not jobs.cancel(job.id, user_id=8) and not job.token.cancelled
    assert jobs.cancel(job.id, user_id=7) and job.token.cancelled
    jobs.finish(job)
    assert not jobs.cancel(job.id, user_id=7)  # finished: nothing to cancel


def test_refusals_read_in_the_users_language():
    error = DocumentError(ErrorCode.ENCRYPTED, "This PDF is password-protected. Remove the password and send it again.")
    assert document_error_text(error, "en") == error.message
    assert document_error_text(error, "zh-hans") == "文件有密码保护。请去掉密码后再发送。"
    for code in ErrorCode:  # every code has a translation
        assert document_error_text(DocumentError(code, "x"), "zh") != "x"
