"""/admin/campaigns (admins): newsletter campaigns — drafts, preview, test send, schedule, cancel, statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.core.problems import problem_responses
from app.core.ratelimit import hit
from app.deps import AdminUser, SettingsDep, admin_user, get_campaign_service
from app.models.marketing import Campaign
from app.routers.params import CREATED, CampaignId, created
from app.schemas.campaigns import (
    CampaignIn,
    CampaignListParams,
    CampaignOut,
    CampaignPatch,
    PreviewOut,
    ScheduleIn,
    TestSendIn,
    campaign_out,
)
from app.schemas.common import Message, Page
from app.services.campaigns import CampaignService

router = APIRouter(prefix="/campaigns", tags=["admin: campaigns"], dependencies=[Depends(admin_user)])

Campaigns = Annotated[CampaignService, Depends(get_campaign_service)]


async def _one(campaigns: CampaignService, c: Campaign) -> CampaignOut:
    return campaign_out(c, (await campaigns.stats([c]))[c.id])


@router.get("", response_model=Page[CampaignOut], responses=problem_responses(422),
            summary="List campaigns (newest first) with their statistics")
async def list_campaigns(campaigns: Campaigns, params: Annotated[CampaignListParams, Query()]) -> Page[CampaignOut]:
    docs, cursor = await campaigns.list(params, params.status)
    stats = await campaigns.stats(docs)
    return Page(items=[campaign_out(c, stats[c.id]) for c in docs], next_cursor=cursor)


@router.post("", response_model=CampaignOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(422), **CREATED}, summary="Create a draft campaign",
             description="`422 unknown-product`: a products block names a product that does not exist.")
async def create_campaign(body: CampaignIn, campaigns: Campaigns, actor: AdminUser, response: Response) -> CampaignOut:
    out = await _one(campaigns, await campaigns.create(body, actor))
    created(response, f"/admin/campaigns/{out.id}")
    return out


@router.get("/{campaign_id}", response_model=CampaignOut, responses=problem_responses(404),
            summary="A campaign with its statistics")
async def get_campaign(campaign_id: CampaignId, campaigns: Campaigns) -> CampaignOut:
    return await _one(campaigns, await campaigns.get(campaign_id))


@router.patch("/{campaign_id}", response_model=CampaignOut, responses=problem_responses(404, 409, 422),
              summary="Change a draft", description="`409 campaign-not-draft` once it is scheduled or later.")
async def patch_campaign(campaign_id: CampaignId, body: CampaignPatch, campaigns: Campaigns) -> CampaignOut:
    return await _one(campaigns, await campaigns.update(campaign_id, body))


@router.get("/{campaign_id}/preview", response_model=PreviewOut, responses=problem_responses(404),
            summary="The email as you would receive it (HTML, text, headers)")
async def preview_campaign(campaign_id: CampaignId, campaigns: Campaigns, actor: AdminUser) -> PreviewOut:
    rendered, headers = await campaigns.preview(await campaigns.get(campaign_id), actor)
    return PreviewOut(to=actor.email, subject=rendered.subject, text=rendered.text, html=rendered.html,
                      headers=headers)


@router.post("/{campaign_id}/test-send", status_code=status.HTTP_202_ACCEPTED, response_model=Message,
             responses=problem_responses(404, 422, 429), summary="Send one test copy to an address",
             description="Subject prefixed `[Test]`; not counted in the statistics. Limited per admin "
                         "(`RATE_LIMIT_CAMPAIGN_TEST`).")
async def test_send_campaign(campaign_id: CampaignId, body: TestSendIn, campaigns: Campaigns, actor: AdminUser,
                             request: Request, settings: SettingsDep) -> Message:
    await hit(request, settings.rate_limit_campaign_test, "campaign-test", actor.id)
    await campaigns.test_send(await campaigns.get(campaign_id), body.email)
    return Message(detail=f"A test copy is on its way to {body.email}.")


@router.post("/{campaign_id}/schedule", response_model=CampaignOut, responses=problem_responses(404, 409, 422),
             summary="Schedule sending (now, or at `send_at`)",
             description="A draft (or a scheduled campaign, to move its time). `409 campaign-not-draft` once it "
                         "is sending; `422 send-at-in-past` more than 5 minutes ago.")
async def schedule_campaign(campaign_id: CampaignId, body: ScheduleIn, campaigns: Campaigns) -> CampaignOut:
    return await _one(campaigns, await campaigns.schedule(campaign_id, body.send_at))


@router.post("/{campaign_id}/cancel", response_model=CampaignOut, responses=problem_responses(404, 409),
             summary="Cancel a campaign that has not finished (its unsent emails too)",
             description="A draft, a scheduled campaign, or one still `sending` (being queued, or with emails "
                         "not sent yet, e.g. while the mail server is down): every unsent email of it is cancelled "
                         "at once; emails already sent stay sent, and one an outbox worker is handing to the mail "
                         "server at that very moment may still go (it then counts as sent). "
                         "`409 campaign-not-cancellable` once it is sent (nothing left to send) or cancelled.")
async def cancel_campaign(campaign_id: CampaignId, campaigns: Campaigns) -> CampaignOut:
    return await _one(campaigns, await campaigns.cancel(campaign_id))
