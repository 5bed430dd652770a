"""/users/me: the signed-in user's profile, password, addresses, account deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from app.core.problems import problem_responses
from app.core.ratelimit import hit
from app.deps import CurrentUser, client_info, get_account_service, get_auth_service
from app.routers.params import CREATED, AddressId, created
from app.schemas.auth import TokenPair
from app.schemas.users import (
    AddressIn,
    AddressOut,
    AddressPatch,
    ChangePasswordIn,
    DeleteAccountIn,
    ProfilePatch,
    UserOut,
)
from app.services.accounts import AccountService, profile
from app.services.auth import AuthService, ClientInfo

router = APIRouter(prefix="/users/me", tags=["account"], responses=problem_responses(401))

Accounts = Annotated[AccountService, Depends(get_account_service)]


@router.get("", response_model=UserOut, summary="My profile")
async def get_me(user: CurrentUser) -> UserOut:
    return await profile(user)


@router.patch("", response_model=UserOut, responses=problem_responses(422, 429), summary="Update my profile",
              description="`preferences.newsletter: true` counts against the newsletter sign-up limit of the "
                          "account's address (it may email a confirmation link).")
async def patch_me(body: ProfilePatch, user: CurrentUser, accounts: Accounts, request: Request) -> UserOut:
    if body.preferences is not None and body.preferences.newsletter:
        await hit(request, request.app.state.settings.rate_limit_newsletter_email, "newsletter-email",
                  user.email.lower())
    return await profile(await accounts.update_profile(user, body))


@router.post("/password", response_model=TokenPair, responses=problem_responses(422, 429),
             summary="Change my password (ends every session; returns a fresh token pair)")
async def change_password(body: ChangePasswordIn, user: CurrentUser, request: Request,
                          auth: Annotated[AuthService, Depends(get_auth_service)],
                          client: Annotated[ClientInfo, Depends(client_info)]) -> TokenPair:
    # The current password is checked here: limit guesses like a login, per account.
    await hit(request, request.app.state.settings.rate_limit_login_email, "password-change", user.id)
    return await auth.change_password(user, body.current_password, body.new_password, client)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(409, 422),
               summary="Delete my account (personal data anonymized; order records kept)")
async def delete_me(body: DeleteAccountIn, user: CurrentUser, accounts: Accounts) -> Response:
    await accounts.delete_account(user, body.password)
    return Response(status_code=204)


@router.get("/addresses", response_model=list[AddressOut], summary="My addresses")
async def list_addresses(user: CurrentUser) -> list[AddressOut]:
    return [AddressOut.model_validate(a.model_dump()) for a in user.addresses]


@router.post("/addresses", response_model=AddressOut, status_code=status.HTTP_201_CREATED,
             responses={**problem_responses(409, 422), **CREATED}, summary="Add an address (at most 20)")
async def add_address(body: AddressIn, user: CurrentUser, accounts: Accounts, response: Response) -> AddressOut:
    out = AddressOut.model_validate((await accounts.add_address(user, body)).model_dump())
    created(response, f"/users/me/addresses/{out.id}")
    return out


@router.get("/addresses/{address_id}", response_model=AddressOut, responses=problem_responses(404))
async def get_address(address_id: AddressId, user: CurrentUser, accounts: Accounts) -> AddressOut:
    return AddressOut.model_validate(accounts.get_address(user, address_id).model_dump())


@router.patch("/addresses/{address_id}", response_model=AddressOut, responses=problem_responses(404, 422))
async def patch_address(address_id: AddressId, body: AddressPatch, user: CurrentUser,
                        accounts: Accounts) -> AddressOut:
    return AddressOut.model_validate((await accounts.update_address(user, address_id, body)).model_dump())


@router.delete("/addresses/{address_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
async def delete_address(address_id: AddressId, user: CurrentUser, accounts: Accounts) -> Response:
    await accounts.delete_address(user, address_id)
    return Response(status_code=204)
